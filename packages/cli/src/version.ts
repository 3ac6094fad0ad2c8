/** Shown by --version and recorded in image labels. */
export const VERSION = '0.1.0';
