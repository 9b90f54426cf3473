// Mocha reporter: the usual spec output, plus (when IRQSIM_MOCHA_JSON names a file) the run's
// counts as JSON, which .ci/run turns into its closing "N passed, N failed" line. Under mocha
// --parallel (.mocharc.json) the reporter runs in the main process and sees every worker's
// events, so the counts cover all files.
'use strict';
const fs = require('fs');
const Mocha = require('mocha');

class SpecWithCounts extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    const out = process.env.IRQSIM_MOCHA_JSON;
    if (!out) return;
    runner.once(Mocha.Runner.constants.EVENT_RUN_END, () => {
      const s = this.stats;
      fs.writeFileSync(out, JSON.stringify({ stats: { passes: s.passes, failures: s.failures, pending: s.pending, tests: s.tests } }));
    });
  }
}

module.exports = SpecWithCounts;
