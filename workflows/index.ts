// Every workflow the worker runs. This file is the bundle entry point.
export { lifecycle, hrEventSignal, lifecycleStateQuery } from './lifecycle.js';
