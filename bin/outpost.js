#!/usr/bin/env node
// The outpost command: agent daemon, gateway, and the targetcli-style shell.
import('../dist/agent/cli.js').then((m) => m.main(process.argv.slice(2))).catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
