import type { Options } from 'tsup';

// This plugin's build entries (the root tsup.config.ts builds every package); none yet.
const options: Options[] = [];
export default options;
