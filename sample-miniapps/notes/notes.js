// @ts-check
/// <reference path="../../runtime-api/fc.d.ts" />
// Notes with cursor paging and atomic batches. Keys sort by creation:
// `note:<ms>-<sequence within the call>-<rand>`.

const MAX_TEXT = 10_000;

function checkText(text) {
  if (typeof text !== 'string' || text.length === 0 || text.length > MAX_TEXT) {
    throw new TypeError(`text must be a string of 1..${MAX_TEXT} characters`);
  }
  return text;
}

function newKey(seq = 0) {
  return `note:${String(Date.now()).padStart(15, '0')}-${String(seq).padStart(4, '0')}-${crypto.randomUUID().slice(0, 8)}`;
}

/** Adds a note `{ text }`; returns `{ id, text, createdAt }`. */
export async function addNote(args) {
  const note = { id: newKey(), text: checkText(args?.text), createdAt: new Date().toISOString() };
  await fc.storage.set(note.id, note);
  return note;
}

/** Adds many notes `{ texts: [...] }` atomically: all are stored or none. */
export async function addNotes(args) {
  const texts = args?.texts;
  if (!Array.isArray(texts) || texts.length === 0 || texts.length > 500) throw new TypeError('texts must be an array of 1..500 strings');
  const notes = texts.map((t, i) => ({ id: newKey(i), text: checkText(t), createdAt: new Date().toISOString() }));
  await fc.storage.batch(notes.map((n) => ({ op: 'set', key: n.id, value: n })));
  return { added: notes.length, ids: notes.map((n) => n.id) };
}

/** One page of notes, oldest first: `{ limit?, cursor? }` → `{ notes, cursor }`. */
export async function listNotes(args) {
  const page = await fc.storage.list({ prefix: 'note:', limit: args?.limit ?? 20, cursor: args?.cursor ?? null });
  return { notes: page.entries.map((e) => e.value), cursor: page.cursor };
}

/** Deletes notes `{ ids: [...] }` atomically. */
export async function deleteNotes(args) {
  const ids = args?.ids;
  if (!Array.isArray(ids) || ids.some((id) => typeof id !== 'string' || !id.startsWith('note:'))) {
    throw new TypeError('ids must be an array of note ids');
  }
  await fc.storage.batch(ids.map((key) => ({ op: 'delete', key })));
  return { deleted: ids.length };
}

/** Counts all notes, walking every page. */
export async function countNotes() {
  let n = 0;
  let cursor = null;
  do {
    const page = await fc.storage.list({ prefix: 'note:', limit: 1000, cursor });
    n += page.entries.length;
    cursor = page.cursor;
  } while (cursor);
  return n;
}
