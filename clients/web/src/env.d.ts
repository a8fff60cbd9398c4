/** esbuild bundles imported style sheets into the app's one CSS file. */
declare module '*.css';
