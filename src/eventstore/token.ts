import { nanoid } from 'nanoid';

/** A lease token: unguessable, so a completion proves which lease it holds. */
export function newToken(): string {
  return nanoid(16);
}
