export { expandTargets, type PlanInput, planBuild, type PublishOptions, STEP_SCHEMA, sourceIdentity } from './plan.js';
export { resolveSource } from './resolve.js';
export { imageName, imageTags, type NamingOptions } from './tags.js';
