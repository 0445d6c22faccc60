// Compiles the project's own test contracts (tests/contracts/*.sol) with solc-js into Hardhat-style artifacts
// ({"abi", "bytecode"}) in the artifacts directory given as the first argument.
const fs = require('fs');
const path = require('path');
const solc = require('solc');
const [outDir, ...files] = process.argv.slice(2);
const sources = {};
for (const f of files) sources[path.basename(f)] = { content: fs.readFileSync(f, 'utf8') };
const input = {
  language: 'Solidity',
  sources,
  settings: { optimizer: { enabled: true, runs: 200 }, outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } } },
};
const out = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (out.errors || []).filter((e) => e.severity === 'error');
if (errors.length) {
  for (const e of errors) console.error(e.formattedMessage);
  process.exit(1);
}
for (const file of Object.keys(out.contracts)) {
  for (const [name, c] of Object.entries(out.contracts[file])) {
    fs.writeFileSync(path.join(outDir, `${name}.json`), JSON.stringify({ contractName: name, abi: c.abi, bytecode: '0x' + c.evm.bytecode.object }));
  }
}
