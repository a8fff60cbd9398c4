# One image for the api and the worker; the command picks the role (docker-compose.yml).
# Built in one stage with the dev dependencies (TypeScript), run in another with the production
# ones alone: compiled JavaScript, no tsx, no sources.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# The SDK is a workspace of the lock: its manifest must be there for `npm ci` (its code is not needed).
COPY clients/js/package.json ./clients/js/package.json
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
COPY workers ./workers
# The web app (dist/web) is bundled from its sources and the SDK's.
COPY clients/js/src ./clients/js/src
COPY clients/web ./clients/web
# The build info only serves the next incremental build.
RUN npm run build && rm dist/.tsbuildinfo

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
COPY clients/js/package.json ./clients/js/package.json
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# So that `npm start`, `npm run api`, `worker` and `migrate` work in the image too: with no
# sources beside dist/, the build script finds it up to date and runs it.
COPY scripts/build.mjs ./scripts/build.mjs
USER node
EXPOSE 3000
CMD ["node", "dist/src/main.js"]
