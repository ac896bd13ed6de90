// The container's HEALTHCHECK: node itself, so the image needs no curl or wget.
// Exit 0 when GET $ISOHOST_HEALTHCHECK_URL answers 2xx within 3 s, else 1 (Docker
// treats any non-zero as unhealthy). The default is the ops listener of
// deploy/isohost.example.yaml; set the variable when your config puts /healthz elsewhere.
const url = process.env.ISOHOST_HEALTHCHECK_URL || 'http://127.0.0.1:9090/healthz';

try {
  const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
  await res.body?.cancel();
  if (!res.ok) console.error(`healthcheck: ${url} answered ${res.status}`);
  process.exitCode = res.ok ? 0 : 1;
} catch (err) {
  console.error(`healthcheck: ${url} failed: ${err?.cause?.code ?? err?.name ?? err}`);
  process.exitCode = 1;
}
