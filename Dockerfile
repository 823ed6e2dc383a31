# jml-engine: one image for every role (`jml start`, `jml api`, `jml worker`).
# The app runs its TypeScript sources through tsx; there is no separate build step.
FROM node:20-bookworm-slim

WORKDIR /app

# package-lock.json is written by npm 11. The npm 10 bundled with Node 20 rejects it as out of
# sync ("Missing: esbuild@0.28.2 from lock file"); npm 11.19.1 installs it (checked). Bump this
# together with the npm that maintains the lockfile.
RUN npm install -g npm@11.19.1 --no-audit --no-fund && npm cache clean --force

# Dependencies first, so a source change does not reinstall them. Plain `npm ci` (not
# --omit=dev): the image runs from sources, and the full tree is what the tests run against.
# Native parts (@temporalio/core-bridge, @swc/core, esbuild) come as prebuilt glibc binaries,
# so no compiler is needed on bookworm-slim. npm 11 may hold back install scripts it has not
# been told to allow (esbuild's binary check, msgpackr-extract's optional build): neither is
# needed; the app and its workers were run from a tree installed that way.
COPY package.json package-lock.json ./
# postinstall applies patches/ (the postgres.js driver fix) during npm ci.
COPY patches ./patches
RUN npm ci --no-audit --no-fund && npm cache clean --force

# Sources stay owned by root (the app cannot rewrite its own code); only the data dir is
# writable by the runtime user. `jml start` writes data/secrets.env on first run.
COPY . .
RUN mkdir -p /app/data && chown node:node /app/data

# node_modules/.bin on PATH: `tsx` (and `docker compose exec app tsx cli/index.ts ...`) resolve
# without npx. No npm update checks when someone does run npm/npx in the container.
ENV PATH=/app/node_modules/.bin:$PATH \
    NODE_ENV=production \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    HOST=0.0.0.0 \
    PORT=3000 \
    JML_DATA_DIR=/app/data

USER node
EXPOSE 3000

# `start` = migrations + API + Temporal worker + ingestion worker in one process. With
# TEMPORAL_ADDRESS set it uses that Temporal instead of starting an embedded dev server, and
# with an ldap `url` in the config it uses that directory instead of a local slapd.
# tsx is started directly, not through `npx tsx`: npm exec does not pass SIGTERM on to its
# child (checked: the app kept running and `docker stop` would end in SIGKILL), while tsx
# relays it to node and the app shuts down gracefully (worker drained, ~1 s).
# Run with an init process (compose: `init: true`) so PID 1 forwards signals and reaps zombies.
CMD ["tsx", "cli/index.ts", "start"]
