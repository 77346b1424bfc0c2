// testEnvironment: 'branching' (or 'jest-environment-branching'). Jest takes the default export.
import { BranchingEnvironment } from './environment.ts';

export { BranchingEnvironment as TestEnvironment };
export default BranchingEnvironment;
