/**
 * The error numbers the model returns, negated as the kernel does (include/uapi/asm-generic/
 * errno-base.h). One place, so a value is never written twice.
 */

export const EIO = 5;
export const ENOMEM = 12;
export const EBUSY = 16;
export const EEXIST = 17;
export const EINVAL = 22;
