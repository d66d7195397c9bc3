export { createMountProgram, type MountProgramOptions } from './program.ts';
export { MOUNT_AUTH_FLAVORS } from './mnt.ts';
export { MountTable, type MountEntry } from './mount-table.ts';
export { MOUNT_PROGRAM, MOUNT_V1, MOUNT_V3, MOUNTPROC3 } from './constants.ts';
