// The entry of the CLI bundle (scripts/build-cli.mjs) that bin/run.js imports: the runner takes
// oclif from the same shared chunk as the bundled commands, so there is one copy of it.
export {execute} from '@oclif/core'
