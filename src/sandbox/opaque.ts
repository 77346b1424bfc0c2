import { native } from '../addon.ts';

/** The xattrs that mark an overlayfs upper directory opaque: with userxattr (in a user namespace), and as real root. */
const OPAQUE_XATTRS = ['user.overlay.opaque', 'trusted.overlay.opaque'];

/**
 * Whether a directory of an overlayfs upper layer is opaque, i.e. replaces the lower layers'
 * directory instead of merging with it. False without the native addon (which reads xattrs).
 */
export function isOpaqueDir(path: string): boolean {
  const binding = native();
  if (!binding) return false;
  return OPAQUE_XATTRS.some((name) => {
    try {
      return binding.getxattr(path, name)?.toString() === 'y';
    } catch {
      return false; // trusted.* is unreadable without privileges
    }
  });
}
