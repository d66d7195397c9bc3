import { XdrReader } from '../xdr/reader.ts';
import { XdrError } from '../xdr/error.ts';
import { XdrWriter } from '../xdr/writer.ts';
import { AUTH_BADCRED, AUTH_BADVERF, AUTH_SYS_MAX_GIDS, AUTH_SYS_MAX_MACHINENAME, AUTH_TOOWEAK } from './constants.ts';
import { RpcAuthError } from './errors.ts';
import { AUTH_NONE, AUTH_SYS, type AuthSysParms, type Credential } from './program.ts';

/**
 * Decodes a call's credential. An unsupported flavour (RPCSEC_GSS, AUTH_DH, …) is AUTH_BADCRED, as
 * Linux's svc_authenticate answers it; a malformed AUTH_SYS body or one past its limits too.
 */
export function decodeCredential(flavor: number, body: Buffer): Credential {
  if (flavor === AUTH_NONE) return { flavor: AUTH_NONE };
  if (flavor !== AUTH_SYS) throw new RpcAuthError(AUTH_BADCRED, `unsupported credential flavour ${flavor}`);
  try {
    const r = new XdrReader(body);
    const sys: AuthSysParms = {
      stamp: r.uint32(),
      machinename: r.string(AUTH_SYS_MAX_MACHINENAME),
      uid: r.uint32(),
      gid: r.uint32(),
      gids: r.array(AUTH_SYS_MAX_GIDS, (x) => x.uint32()),
    };
    if (r.remaining !== 0) throw new XdrError('trailing bytes in AUTH_SYS credential', r.offset);
    return { flavor: AUTH_SYS, sys };
  } catch (e) {
    if (e instanceof XdrError) throw new RpcAuthError(AUTH_BADCRED, `malformed AUTH_SYS credential: ${e.message}`);
    throw e;
  }
}

/** The call's verifier: with AUTH_NONE and AUTH_SYS it is AUTH_NONE (RFC 5531 appendix A). */
export function checkVerifier(flavor: number, body: Buffer): void {
  if (flavor !== AUTH_NONE || body.length !== 0) {
    throw new RpcAuthError(AUTH_BADVERF, `unexpected verifier flavour ${flavor} (${body.length} bytes)`);
  }
}

/** Procedures may require a flavour stronger than AUTH_NONE (the NFS program does for most calls). */
export function requireAuthSys(cred: Credential): AuthSysParms {
  if (cred.flavor !== AUTH_SYS) throw new RpcAuthError(AUTH_TOOWEAK, 'AUTH_SYS required');
  return cred.sys;
}

export function encodeAuthSys(p: AuthSysParms): Buffer {
  return new XdrWriter()
    .uint32(p.stamp)
    .string(p.machinename)
    .uint32(p.uid)
    .uint32(p.gid)
    .array(p.gids, (w, g) => w.uint32(g))
    .toBuffer();
}
