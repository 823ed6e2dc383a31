#!/usr/bin/env node
// `jml` on PATH (npm link / npx jml): runs the TypeScript CLI through tsx.
import { register } from 'tsx/esm/api';

register();
await import('./index.ts');
