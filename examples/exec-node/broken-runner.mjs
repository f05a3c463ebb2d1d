// A deliberately wrong variant of runner.mjs, for showing that the harness catches it:
// its run() does not cancel the tasks left over when the main task is done (asyncio.run
// does, K-1), so they keep running while the loop shuts down and are destroyed pending.
//
// Usage: python3 -m conformance run --candidate "exec:node examples/exec-node/broken-runner.mjs"

import { serve } from "./runner.mjs";

serve({ skipLeftoverCancellation: true }, "node-runner-no-leftover-cancellation");
