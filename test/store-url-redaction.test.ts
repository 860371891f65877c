// Store URLs in messages: passwords are hidden wherever the URL gives them (userinfo, even with an
// unencoded '@', or a query parameter pg or ioredis reads). Needs no server: 127.0.0.1:1 refuses.
import { describe, expect, it } from 'vitest';
import { redactUrl } from '../src/eventstore/postgres/connection.ts';
import { parseRedisUrl } from '../src/eventstore/redis/server.ts';
import { openStore, redact } from '../src/eventstore/url.ts';

describe('store URLs in messages', () => {
  it.each([
    ['postgres://app:s3cret@db/prod', 'postgres://app:***@db/prod'],
    ['postgres://app@db/prod?password=s3cret', 'postgres://app@db/prod?password=***'],
    ['postgres://app:s3c@ret@db/prod', 'postgres://app:***@db/prod'], // an unencoded '@'
    ['postgres://app:s3c@r/et@db/prod?application_name=a@b', 'postgres://app:***@db/prod?application_name=a@b'],
    ['postgres://app:s3c?ret@db/prod', 'postgres://app:***@db/prod'],
    ['postgres://app@db:5432/prod?sslmode=require&sslpassword=s3cret&sslkey=/s3cret/key.pem&schema=jobs', 'postgres://app@db:5432/prod?sslmode=require&sslpassword=***&sslkey=***&schema=jobs'],
    ['postgres://app@db/prod?PASSWORD=s3cret&pass%77ord=s3cret', 'postgres://app@db/prod?PASSWORD=***&pass%77ord=***'],
    ['postgres://db:5432/prod?schema=jobs', 'postgres://db:5432/prod?schema=jobs'],
    ['redis://:s3cret@cache:6379/0?prefix=app:', 'redis://:***@cache:6379/0?prefix=app:'],
    ['rediss://default@cache?password=s3cret', 'rediss://default@cache?password=***'],
  ])('%s is shown as %s', (url, shown) => {
    expect(redactUrl(url)).toBe(shown);
    expect(redact(url)).toBe(shown);
  });

  it('a Postgres server that does not answer: TIMEOUT, the ?password= hidden', async () => {
    const error = await openStore('postgres://app@127.0.0.1:1/prod?password=s3cret').catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'TIMEOUT' });
    expect((error as Error).message).toContain('postgres://app@127.0.0.1:1/prod?password=***');
    expect((error as Error).message).not.toContain('s3cret');
  });

  it('a Postgres URL refused before connecting hides a password with an unencoded @', async () => {
    const error = await openStore('postgres://app:s3c@ret@db.example/prod?migrate=maybe').catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'VALIDATION' });
    expect((error as Error).message).toContain('postgres://app:***@db.example/prod?migrate=maybe');
    expect((error as Error).message).not.toContain('ret');
  });

  it('a Redis URL with ?password= is refused (only prefix is read) without showing the password', () => {
    expect(() => parseRedisUrl('redis://cache:6379?password=s3cret')).toThrow('store URL "redis://cache:6379?password=***": unknown parameter "password"');
  });

  it('a store URL of no known kind is refused without showing its password', async () => {
    const error = await openStore('mysql://app:s3cret@db/prod').catch((e: unknown) => e);
    expect((error as Error).message).toContain('store URL "mysql://app:***@db/prod" is not recognised');
  });
});
