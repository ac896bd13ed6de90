// @ts-check
/// <reference path="../../runtime-api/fc.d.ts" />
// A per-user profile, keyed by the verified caller (fc.session.user). The app never
// names its tenant: the host bound this instance's storage to it at launch.

function me() {
  const user = fc.session.user;
  if (user === null) throw new Error('this method needs a signed-in user (--sub or a token)');
  return user.sub;
}

/** Returns the caller's profile, or null. */
export async function getProfile() {
  return (await fc.storage.get(`profile:${me()}`)) ?? null;
}

/** Merges `{ name?, email?, prefs? }` into the caller's profile and returns it. */
export async function setProfile(args) {
  if (args === null || typeof args !== 'object' || Array.isArray(args)) throw new TypeError('setProfile takes an object');
  const current = (await fc.storage.get(`profile:${me()}`)) ?? {};
  const next = { ...current, ...pick(args, ['name', 'email', 'prefs']), updatedAt: new Date().toISOString() };
  await fc.storage.set(`profile:${me()}`, next);
  fc.log.info('profile updated', { fields: Object.keys(args) });
  return next;
}

/** Deletes the caller's profile. */
export async function deleteProfile() {
  await fc.storage.delete(`profile:${me()}`);
  return { deleted: true };
}

function pick(obj, keys) {
  const out = {};
  for (const k of keys) if (k in obj) out[k] = obj[k];
  return out;
}
