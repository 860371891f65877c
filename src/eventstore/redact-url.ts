/**
 * Query parameters whose values are hidden: `pg` reads the whole query into its connection config
 * (`password`, `sslpassword`, `sslkey` — a private key's file — and whatever else it is given), as
 * ioredis reads `password`. Any name that looks like a secret counts, over-hiding being harmless.
 */
const SECRET_PARAM = /pass|secret|token|key|auth|cred/i;

/**
 * A store URL with its secrets hidden, for messages: the password of the userinfo
 * (`user:***@host`) and the values of secret-looking query parameters (`?password=***`). The
 * userinfo runs to the last `@` before the query, so a password with an unencoded `@` (or `/`) is
 * hidden whole. Works on URLs that do not parse too: it is for the messages that say so.
 *
 * @example
 * redactUrl('postgres://app:p@ss@db/prod?sslpassword=x&schema=jobs') // 'postgres://app:***@db/prod?sslpassword=***&schema=jobs'
 */
export function redactUrl(url: string): string {
  const slashes = url.indexOf('//');
  const start = slashes < 0 ? 0 : slashes + 2;
  let out = url;
  let queryFrom = start;
  if (slashes >= 0) {
    const rest = url.slice(start);
    const colon = rest.indexOf(':');
    const firstAt = rest.indexOf('@');
    // A password: a colon in the userinfo, i.e. before its first '@' and with no '/', '?' or '#' before it.
    if (colon >= 0 && firstAt > colon && !/[/?#@]/.test(rest.slice(0, colon))) {
      const query = rest.search(/[?#]/);
      const lastAt = query < 0 ? rest.lastIndexOf('@') : rest.lastIndexOf('@', query);
      // A '?' or '#' in the password itself: it ends at an '@' after the query's apparent start.
      const end = lastAt > colon ? lastAt : rest.indexOf('@', colon);
      out = `${url.slice(0, start)}${rest.slice(0, colon)}:***${rest.slice(end)}`;
      queryFrom = start + colon + 4;
    } else if (firstAt >= 0 && !/[/?#]/.test(rest.slice(0, firstAt))) {
      queryFrom = start + firstAt;
    }
  }
  const q = out.indexOf('?', queryFrom);
  if (q < 0) return out;
  const hash = out.indexOf('#', q);
  const query = out.slice(q + 1, hash < 0 ? undefined : hash);
  const hidden = query.split('&').map((pair) => {
    const eq = pair.indexOf('=');
    return eq >= 0 && SECRET_PARAM.test(decode(pair.slice(0, eq))) ? `${pair.slice(0, eq)}=***` : pair;
  });
  return `${out.slice(0, q + 1)}${hidden.join('&')}${hash < 0 ? '' : out.slice(hash)}`;
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return text;
  }
}
