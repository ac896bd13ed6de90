/** Bundle entry for realm.test.ts: the web globals plus the host port, as one script. */
export { fetch, installWebGlobals } from '../../runtime-api/prelude/web/index.ts';
export { installHostPort, settle } from '../../runtime-api/prelude/host.ts';
