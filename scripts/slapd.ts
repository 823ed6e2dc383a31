// A throwaway OpenLDAP server (Debian's slapd 2.5) for tests and manual runs: its own
// cn=config in a folder, a free loopback port, no systemd and no root-owned state.
import { ownChild } from './child-process.js';
import { freePort } from './free-port.js';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Client } from 'ldapts';
import type { LdapServerInfo } from '../test/support/env.js';
import { makePrivate, PRIVATE_DIR, PRIVATE_FILE } from '../services/setup.js';

const SLAPD = '/usr/sbin/slapd';
const SLAPADD = '/usr/sbin/slapadd';
const MODULE_PATH = '/usr/lib/ldap';
const SCHEMA_DIR = '/etc/ldap/schema';

export interface StartSlapdOptions {
  /** Folder for the config and the database; wiped and recreated unless `keep`. */
  dir: string;
  /** Reuse the directory made by an earlier start (for `npm start`), keeping its entries. */
  keep?: boolean;
  /** Loopback port; a free one when omitted. */
  port?: number;
  suffix?: string;
  adminPassword?: string;
  /**
   * Load the memberof overlay (default true). Tests start one without it to show that
   * nothing is proven by memberOf, which a directory need not maintain.
   */
  memberOf?: boolean;
  log?: (line: string) => void;
}

export type SlapdServer = LdapServerInfo & {
  pid: number;
  /** Settles when slapd ends, saying how ("exit code 1", "signal SIGKILL"). */
  exited: Promise<string>;
  stop(): Promise<void>;
};

export function slapdAvailable(): boolean {
  return existsSync(SLAPD) && existsSync(SLAPADD);
}

/** RFC 2307 {SSHA}: base64(sha1(password + salt) + salt); slapd checks it without slappasswd. */
function sshaHash(password: string): string {
  const salt = randomBytes(8);
  const digest = createHash('sha1').update(password).update(salt).digest();
  return `{SSHA}${Buffer.concat([digest, salt]).toString('base64')}`;
}

// The memberof overlay, {0}: optional, and slapd accepts the gap in the numbering it leaves.
const MEMBEROF_OVERLAY = `
dn: olcOverlay={0}memberof,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcMemberOf
olcOverlay: {0}memberof
olcMemberOfGroupOC: groupOfNames
olcMemberOfMemberAD: member
olcMemberOfMemberOfAD: memberOf
olcMemberOfRefInt: TRUE
`;

function configLdif(dir: string, suffix: string, rootDN: string, rootPW: string, memberOf: boolean): string {
  // Schema LDIFs are inlined rather than `include:`d so the file is self-contained.
  const schemas = ['core', 'cosine', 'inetorgperson', 'nis']
    .map((name) => readFileSync(join(SCHEMA_DIR, `${name}.ldif`), 'utf8').trim())
    .join('\n\n');
  return `dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: ${join(dir, 'slapd.pid')}
olcArgsFile: ${join(dir, 'slapd.args')}

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: ${MODULE_PATH}
olcModuleLoad: back_mdb
${memberOf ? 'olcModuleLoad: memberof\n' : ''}olcModuleLoad: refint
olcModuleLoad: ppolicy

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

${schemas}

dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcAccess: {0}to * by * none

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcDbDirectory: ${join(dir, 'data')}
olcSuffix: ${suffix}
olcRootDN: ${rootDN}
olcRootPW: ${rootPW}
olcDbMaxSize: 268435456
olcDbNoSync: TRUE
olcDbIndex: objectClass eq
olcDbIndex: uid,cn,mail eq
olcDbIndex: ${memberOf ? 'member,memberOf' : 'member'} eq
olcAccess: {0}to attrs=userPassword by self write by anonymous auth by * none
olcAccess: {1}to * by * read
${memberOf ? MEMBEROF_OVERLAY : ''}
dn: olcOverlay={1}refint,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcRefintConfig
olcOverlay: {1}refint
olcRefintAttribute: member
olcRefintNothing: ${rootDN}

dn: olcOverlay={2}ppolicy,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcPPolicyConfig
olcOverlay: {2}ppolicy
olcPPolicyDefault: cn=default,ou=policies,${suffix}
`;
}

function dataLdif(suffix: string): string {
  const dc = /^dc=([^,]+)/i.exec(suffix)?.[1] ?? 'example';
  const ou = (name: string) => `dn: ou=${name},${suffix}\nobjectClass: organizationalUnit\nou: ${name}\n`;
  // pwdLockout must be TRUE for pwdAccountLockedTime (000001010000Z = locked for good) to block binds.
  return `dn: ${suffix}
objectClass: dcObject
objectClass: organization
dc: ${dc}
o: ${dc}

${ou('people')}
${ou('groups')}
${ou('disabled')}
${ou('policies')}
dn: cn=default,ou=policies,${suffix}
objectClass: organizationalRole
objectClass: pwdPolicy
cn: default
pwdAttribute: userPassword
pwdLockout: TRUE
`;
}

function slapadd(args: string[], ldif: string): void {
  const result = spawnSync(SLAPADD, [...args, '-l', ldif], { encoding: 'utf8' });
  if (result.status !== 0) {
    throw new Error(`slapadd ${args.join(' ')} failed (exit ${result.status}): ${(result.stderr || result.stdout).trim()}`);
  }
}

async function waitForBind(url: string, dn: string, password: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`slapd exited (${child.signalCode ?? `code ${child.exitCode}`}) during start-up`);
    const client = new Client({ url, connectTimeout: 1000 });
    try {
      await client.bind(dn, password);
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`slapd did not accept a bind on ${url} within ${timeoutMs}ms: ${String(err)}`);
      await new Promise((r) => setTimeout(r, 25));
    } finally {
      await client.unbind().catch(() => {});
    }
  }
}

export async function startSlapd(opts: StartSlapdOptions): Promise<SlapdServer> {
  if (!slapdAvailable()) throw new Error(`${SLAPD} not found: install the slapd package (apt-get install slapd ldap-utils)`);
  const log = opts.log ?? (() => {});
  const dir = resolve(opts.dir);
  const suffix = opts.suffix ?? 'dc=example,dc=com';
  const bindDN = `cn=admin,${suffix}`;
  const bindPassword = opts.adminPassword ?? 'admin';
  // Checking a fixed port first matters: otherwise the bind probe below could reach an
  // older slapd still listening there and report success for ours, which failed to bind.
  const port = await freePort(opts.port).catch((err: Error) => {
    throw new Error(`${err.message} (an earlier slapd still running?)`);
  });

  // What the directory was built for; a kept directory is reused only for the same values.
  const memberOf = opts.memberOf ?? true;
  const built = memberOf ? [suffix, bindPassword] : [suffix, bindPassword, 'no memberof'];
  const fingerprint = createHash('sha256').update(JSON.stringify(built)).digest('hex');
  const fingerprintFile = join(dir, 'fingerprint');
  const reuse = opts.keep === true && existsSync(fingerprintFile);
  if (reuse && readFileSync(fingerprintFile, 'utf8') !== fingerprint) {
    throw new Error(`${dir} holds a directory made for another suffix, admin password or overlay set; delete it to start afresh`);
  }
  if (!reuse) {
    // Start from nothing: a stale cn=config would make slapadd fail on duplicates.
    // The folder is the owner's only (0700, files 0600): config.ldif holds the root
    // password's hash and the database the people's entries.
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(join(dir, 'slapd.d'), { recursive: true, mode: PRIVATE_DIR });
    mkdirSync(join(dir, 'data'), { recursive: true, mode: PRIVATE_DIR });
    writeFileSync(join(dir, 'config.ldif'), configLdif(dir, suffix, bindDN, sshaHash(bindPassword), memberOf), { mode: PRIVATE_FILE });
    writeFileSync(join(dir, 'data.ldif'), dataLdif(suffix), { mode: PRIVATE_FILE });
    slapadd(['-n0', '-F', join(dir, 'slapd.d')], join(dir, 'config.ldif'));
    slapadd(['-n1', '-F', join(dir, 'slapd.d')], join(dir, 'data.ldif'));
    // Written last, so a half-built directory is never taken for a finished one.
    writeFileSync(fingerprintFile, fingerprint, { mode: PRIVATE_FILE });
  }
  // slapadd makes its folders 0750; a kept folder may come from before this rule.
  makePrivate(dir);

  const url = `ldap://127.0.0.1:${port}`;
  // `-d 0` keeps slapd in the foreground (no daemon fork), so the pid we hold is the server
  // and killing it cannot leave a detached copy behind.
  const child = spawn(SLAPD, ['-d', '0', '-h', `${url}/`, '-F', join(dir, 'slapd.d')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const stderr: string[] = [];
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr.push(chunk.toString());
  });
  const { exited, stop } = ownChild(child, 5_000);

  try {
    await waitForBind(url, bindDN, bindPassword, child, 10_000);
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}\n${stderr.join('').trim()}`);
  }
  // slapd writes its pid and args files under the process umask: private too.
  makePrivate(dir);
  log(`slapd ${suffix} listening on ${url} (pid ${child.pid})`);
  return {
    url,
    bindDN,
    bindPassword,
    baseDN: suffix,
    usersDN: `ou=people,${suffix}`,
    groupsDN: `ou=groups,${suffix}`,
    disabledDN: `ou=disabled,${suffix}`,
    pid: child.pid!,
    exited,
    stop,
  };
}

// `npx tsx scripts/slapd.ts [port]`: a slapd in ./data/slapd for manual testing; Ctrl-C stops it.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.umask(0o077); // whatever slapd creates in ./data/slapd is the owner's only
  const port = process.argv[2] ? Number(process.argv[2]) : 3890;
  const server = await startSlapd({ dir: join('data', 'slapd'), port, keep: true });
  console.log(`${server.url}  bind: ${server.bindDN} / ${server.bindPassword}  base: ${server.baseDN}`);
  const shutdown = () => void server.stop().then(() => process.exit(0));
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}
