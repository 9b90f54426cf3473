/**
 * The test suite calls the CLI's main() in-process hundreds of times: by default hunt, run and
 * replay run on supervised worker threads (--yield-timeout, 10 s), which costs a worker boot
 * (ts-node and the scenario, 1-2 s) per call. Unless a test asks for supervision with
 * --yield-timeout <s> (the flag wins over this), they run in-process and synchronously.
 */
process.env.IRQSIM_YIELD_TIMEOUT ??= '0';
