# jml-engine: one image for every role (`jml start`, `jml api`, `jml worker`).
# The app runs its TypeScript sources through tsx; there is no separate build step.
FROM node:20-bookworm-slim

WORKDIR /app

# Dependencies first, so a source change does not reinstall them. Plain `npm ci` (not
# --omit=dev): the image runs from sources, and the full tree is what the tests run against.
# Native parts (@temporalio/core-bridge, @swc/core, esbuild) come as prebuilt glibc binaries,
# so no compiler is needed on bookworm-slim.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund && npm cache clean --force

# Sources stay owned by root (the app cannot rewrite its own code); only the data dir is
# writable by the runtime user. `jml start` writes data/secrets.env on first run.
COPY . .
RUN mkdir -p /app/data && chown node:node /app/data

ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    JML_DATA_DIR=/app/data

USER node
EXPOSE 3000

# `start` = migrations + API + Temporal worker + ingestion worker in one process. With
# TEMPORAL_ADDRESS set it uses that Temporal instead of starting an embedded dev server, and
# with an ldap `url` in the config it uses that directory instead of a local slapd.
# Run with an init process (compose: `init: true`) so signals reach node and zombies are reaped.
CMD ["npx", "tsx", "cli/index.ts", "start"]
