/**
 * A starter mini-app: notes per signed-in user, in the app's own storage.
 * Every exported function is a method, called as
 * `POST /v1/tenants/{{tenant}}/apps/{{app}}/calls/<method>` with a JSON body.
 * Types: types/fc.d.ts (the platform's `fc` and the web globals of the isolate).
 */
import type { Json } from '../types/fc.d.ts';

/** A note as stored. A type alias, not an interface, so that it is assignable to `Json`. */
type Note = { text: string; at: string };

/** The caller's subject; storage keys are per user so one user never reads another's notes. */
function owner(): string {
  const user = fc.session.user;
  if (user === null) throw new Error('sign in first: call with a token that has a subject');
  return user.sub;
}

/** Adds a note for the caller. @example addNote({ text: "hello" }) */
export async function addNote(args: { text?: unknown } | null): Promise<Note> {
  if (typeof args?.text !== 'string' || args.text === '') {
    throw new TypeError('text must be a non-empty string');
  }
  const note: Note = { text: args.text, at: new Date().toISOString() };
  await fc.storage.set(`note:${owner()}:${note.at}`, note);
  fc.log.info('note added', { length: note.text.length });
  return note;
}

/** The caller's notes, oldest first (the first 100). */
export async function listNotes(): Promise<Json[]> {
  const page = await fc.storage.list({ prefix: `note:${owner()}:`, limit: 100 });
  return page.entries.map((entry) => entry.value);
}

/** Who is calling, and which version of the app answers. */
export function hello(): { message: string; version: string } {
  return { message: `hello, ${fc.session.user?.sub ?? 'anonymous'}`, version: fc.app.version };
}
