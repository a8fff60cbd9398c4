// `npm run lint`: typescript-eslint's strict rules, sorted imports, and the layers as a check
// (README "Code layout"): a module may import only from its own layer or below, and
// test/unit/layers.test.ts shows the check failing on imports that point the wrong way.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import importX from 'eslint-plugin-import-x';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/** The api's layers, lowest first; each may import the ones before it, never the ones after. */
const LAYERS = [
  ['src/domain'],
  ['src/config.ts', 'src/logger.ts'],
  ['src/db', 'src/redis', 'src/message-log', 'src/stores', 'src/queues', 'src/webhooks', 'src/infra', 'src/metrics'],
  ['src/services'],
  ['src/realtime'],
  ['src/ws', 'src/http'],
  ['src/features'],
  ['src/api.ts', 'src/main.ts'],
];
/** The api transports (and the features on them), which no worker may import. */
const TRANSPORTS = ['src/http', 'src/ws', 'src/realtime', 'src/features', 'src/api.ts', 'src/main.ts'];

const layerZones = LAYERS.flatMap((layer, i) =>
  layer.map((target) => ({
    target: `./${target}`,
    from: LAYERS.slice(i + 1)
      .flat()
      .map((from) => `./${from}`),
    message: 'a lower layer imports a higher one (see LAYERS in eslint.config.js)',
  })),
).filter((zone) => zone.from.length > 0);

export default tseslint.config(
  { ignores: ['dist/', 'clients/js/dist/', '.bench/', '.parley/', 'coverage/', 'test-results/', 'node_modules/'] },
  js.configs.recommended,
  ...tseslint.configs.strict,
  {
    plugins: { 'import-x': importX },
    settings: { 'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json' })] },
    languageOptions: { globals: { ...globals.node } },
    rules: {
      'import-x/order': [
        'error',
        { alphabetize: { order: 'asc', caseInsensitive: true }, 'newlines-between': 'never' },
      ],
      'import-x/no-restricted-paths': [
        'error',
        {
          zones: [
            ...layerZones,
            {
              target: './src',
              from: ['./workers', './scripts', './bench'],
              message: 'src/ imports workers/, scripts/ or bench/',
            },
            {
              target: './workers',
              from: TRANSPORTS.map((t) => `./${t}`),
              message: 'a worker imports an api transport',
            },
          ],
        },
      ],
    },
  },
  {
    // The web app runs in browsers only.
    files: ['clients/web/**'],
    languageOptions: { globals: { ...globals.browser } },
  },
  {
    // Tests and the bench look up what they just made: a `!` after a lookup is the assertion.
    files: ['test/**', 'bench/**'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
  prettier,
);
