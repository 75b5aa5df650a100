// Fails when two files differ: used by `npm run check:api` to tell whether
// src/types/api.ts is stale against ../openapi.yaml.
import { readFileSync } from 'node:fs';

const [committed, fresh] = process.argv.slice(2);
if (readFileSync(committed, 'utf8') !== readFileSync(fresh, 'utf8')) {
  console.error(`${committed} is stale: run \`npm run gen:api\` and commit the result.`);
  process.exit(1);
}
console.log(`${committed} matches ../openapi.yaml`);
