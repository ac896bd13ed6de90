/**
 * deploy/kubernetes/: every object validated offline against the Kubernetes OpenAPI
 * schemas (kubernetes-models' `.validate()`, ajv underneath), then what the schemas cannot
 * say: the pod runs as the image's non-root uid with a read-only root filesystem and no
 * capabilities, probes hit /healthz and /readyz on the ops port, the ConfigMap is the
 * example config, and the NetworkPolicy lets out only the ports the tenants' allowlists
 * name (plus DNS) and lets in only the API port.
 * The schemas have no additionalProperties: false, so a misspelt field passes them;
 * the explicit field checks below are what catch that for the fields that matter.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import { Service } from 'kubernetes-models/v1/Service';
import { parseRule } from '../../src/egress/allowlist.ts';
import { ROOT } from '../helpers/cli.ts';
import { parseDockerfile } from './dockerfile.ts';

// Manifests are plain parsed YAML, read field by field below.
type Obj = Record<string, any>;

const DIR = join(ROOT, 'deploy/kubernetes');
const FILES = readdirSync(DIR).filter((f) => f.endsWith('.yaml')).sort();
const objects: Array<{ file: string; obj: Obj }> = FILES.flatMap((file) =>
  parseAllDocuments(readFileSync(join(DIR, file), 'utf8')).map((doc) => {
    expect(doc.errors, file).toEqual([]);
    return { file, obj: doc.toJS() as Obj };
  }),
);
const find = (kind: string, name: string): Obj => {
  const hit = objects.find((o) => o.obj.kind === kind && o.obj.metadata?.name === name);
  expect(hit, `${kind}/${name}`).toBeDefined();
  return hit!.obj;
};

const MODELS: Record<string, new (o: Obj) => { validate(): void }> = {
  'apps/v1 Deployment': Deployment,
  'networking.k8s.io/v1 NetworkPolicy': NetworkPolicy,
  'v1 ConfigMap': ConfigMap,
  'v1 Namespace': Namespace,
  'v1 PersistentVolumeClaim': PersistentVolumeClaim,
  'v1 Service': Service,
};

/** Throws the validator's message when `obj` does not match its kind's schema. */
async function validate(obj: Obj): Promise<void> {
  const Model = MODELS[`${obj.apiVersion} ${obj.kind}`];
  if (Model === undefined) throw new Error(`no model for ${obj.apiVersion} ${obj.kind}`);
  new Model(obj).validate();
}

describe('deploy/kubernetes manifests', () => {
  it('should validate every object against the Kubernetes schemas', async () => {
    expect(objects.map((o) => o.obj.kind).sort()).toEqual(['ConfigMap', 'Deployment', 'Namespace', 'NetworkPolicy', 'NetworkPolicy', 'PersistentVolumeClaim', 'Service']);
    for (const { file, obj } of objects) {
      await expect(validate(obj), `${file} ${obj.kind}/${obj.metadata?.name}`).resolves.toBeUndefined();
      if (obj.kind !== 'Namespace') expect(obj.metadata.namespace, file).toBe('isohost');
    }
  });

  it('should have the validator reject a wrong type and a missing required field', async () => {
    const deployment = structuredClone(find('Deployment', 'isohost'));
    deployment.spec.template.spec.securityContext.runAsNonRoot = 'yes';
    await expect(validate(deployment)).rejects.toThrow(/runAsNonRoot must be boolean/);
    const policy = structuredClone(find('NetworkPolicy', 'isohost'));
    delete policy.spec.egress[0].to[0].ipBlock.cidr;
    await expect(validate(policy)).rejects.toThrow(/cidr/);
  });

  it('should run the image non-root, read-only, without capabilities, under RuntimeDefault seccomp', () => {
    const pod = find('Deployment', 'isohost').spec.template.spec;
    const uid = parseDockerfile(readFileSync(join(ROOT, 'deploy/docker/Dockerfile'), 'utf8')).stages.at(-1)!.instructions.find((i) => i.op === 'USER')!.args.split(':')[0];
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: Number(uid), seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.containers).toHaveLength(1);
    const c = pod.containers[0];
    expect(c.securityContext).toEqual({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    // the image's ENTRYPOINT/CMD are used as they are
    expect(c.command).toBeUndefined();
    expect(c.args).toBeUndefined();
  });

  it('should mount the PVC at data_dir, the config read-only and /tmp in memory, with one replica', () => {
    const cfg = parse(find('ConfigMap', 'isohost-config').data['isohost.yaml']);
    const deployment = find('Deployment', 'isohost');
    expect(deployment.spec.replicas).toBe(1);
    expect(deployment.spec.strategy).toEqual({ type: 'Recreate' });
    const pod = deployment.spec.template.spec;
    const mounts = Object.fromEntries(pod.containers[0].volumeMounts.map((m: Obj) => [m.name, m]));
    const volumes = Object.fromEntries(pod.volumes.map((v: Obj) => [v.name, v]));
    expect(mounts.data.mountPath).toBe(cfg.deployment.data_dir);
    expect(volumes.data.persistentVolumeClaim.claimName).toBe(find('PersistentVolumeClaim', 'isohost-data').metadata.name);
    expect(mounts.config).toMatchObject({ mountPath: '/etc/isohost', readOnly: true });
    expect(volumes.config.configMap.name).toBe('isohost-config');
    expect(mounts.tmp.mountPath).toBe('/tmp');
    expect(volumes.tmp.emptyDir.medium).toBe('Memory');
  });

  it('should probe /healthz and /readyz on the ops listener and expose the API port', () => {
    const cfg = parse(find('ConfigMap', 'isohost-config').data['isohost.yaml']);
    const c = find('Deployment', 'isohost').spec.template.spec.containers[0];
    const ports = Object.fromEntries(c.ports.map((p: Obj) => [p.name, p.containerPort]));
    expect(ports).toEqual({ http: cfg.deployment.listen.port, ops: cfg.deployment.ops_listen.port });
    expect(cfg.deployment.ops_listen.host).toBe('0.0.0.0'); // the kubelet probes the pod IP
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'ops' });
    expect(c.startupProbe.httpGet).toEqual({ path: '/healthz', port: 'ops' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'ops' });
    const svc = find('Service', 'isohost').spec;
    expect(svc.type).toBe('ClusterIP');
    expect(svc.ports.map((p: Obj) => [p.port, p.targetPort])).toEqual([[8080, 'http'], [9090, 'ops']]);
  });

  it('should carry deploy/isohost.example.yaml verbatim as the config', () => {
    expect(find('ConfigMap', 'isohost-config').data['isohost.yaml']).toBe(readFileSync(join(ROOT, 'deploy/isohost.example.yaml'), 'utf8'));
  });

  it('should enforce the restricted Pod Security Standard on the namespace', () => {
    expect(find('Namespace', 'isohost').metadata.labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
  });

  it('should deny all traffic by default in the namespace', () => {
    expect(find('NetworkPolicy', 'default-deny-all').spec).toEqual({ podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
  });

  it('should let out only the ports the allowlists name (and DNS), and let in only 8080 from the super app', () => {
    const cfg = parse(find('ConfigMap', 'isohost-config').data['isohost.yaml']);
    const allowlisted = new Set<number>();
    for (const t of cfg.tenants) {
      for (const text of t.network?.allow ?? []) {
        const rule = parseRule(text);
        for (const p of rule.port === null ? [80, 443] : [rule.port]) allowlisted.add(p);
      }
    }
    const policy = find('NetworkPolicy', 'isohost').spec;
    expect(policy.podSelector.matchLabels).toEqual(find('Deployment', 'isohost').spec.template.metadata.labels);
    expect(policy.policyTypes).toEqual(['Ingress', 'Egress']);
    const upstreamPorts = new Set<number>();
    for (const rule of policy.egress) {
      expect(rule.to?.length, 'every egress rule names its peers').toBeGreaterThan(0);
      expect(rule.ports?.length, 'every egress rule names its ports').toBeGreaterThan(0);
      const dns = rule.ports.every((p: Obj) => p.port === 53);
      if (dns) {
        expect(rule.to).toEqual([{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }]);
        continue;
      }
      for (const peer of rule.to) {
        expect(Object.keys(peer), 'upstreams are named by CIDR').toEqual(['ipBlock']);
        expect(peer.ipBlock.cidr).not.toMatch(/^0\.0\.0\.0\/0$|^::\/0$/);
      }
      for (const p of rule.ports) {
        expect(p.protocol).toBe('TCP');
        upstreamPorts.add(p.port);
      }
    }
    expect([...upstreamPorts].sort()).toEqual([...allowlisted].sort());
    expect(policy.ingress).toEqual([
      { from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'super-app' } } }], ports: [{ protocol: 'TCP', port: cfg.deployment.listen.port }] },
    ]);
  });
});
