// The asset tree: assets and devices joined by `contains` relations, roots first.
import { api, listOf } from "../api";
import { HealthBadge, useHealthScores } from "../components/health";
import { ErrorBox, Loading, PageTitle, useAsync } from "../components/ui";
import { linkClick } from "../router";

interface Node {
  name: string;
  kind: string;
  type?: string;
}
type End = string | { name: string; kind?: string; type?: string };
interface Relation {
  from: End;
  to: End;
  type: string;
}

const nameOf = (e: End) => (typeof e === "string" ? e : e.name);

function Tree({
  node,
  children,
  seen,
  online,
  health,
}: {
  node: Node;
  children: Map<string, Node[]>;
  seen: Set<string>;
  online: Map<string, boolean>;
  health: Map<string, number>;
}) {
  const kids = seen.has(node.name) ? [] : (children.get(node.name) ?? []);
  const next = new Set(seen).add(node.name);
  return (
    <li className="my-1">
      {node.kind === "device" ? (
        <a
          href={"/devices/" + encodeURIComponent(node.name)}
          onClick={linkClick}
          className="text-cyan-800 underline dark:text-cyan-300"
        >
          {node.name}
        </a>
      ) : (
        <span className="font-medium">{node.name}</span>
      )}
      {node.kind === "device" && online.has(node.name) && (
        <span
          className={`ml-2 text-xs ${online.get(node.name) ? "text-emerald-700 dark:text-emerald-400" : "text-slate-600 dark:text-slate-400"}`}
        >
          {online.get(node.name) ? "online" : "offline"}
        </span>
      )}
      {node.kind === "device" && health.has(node.name) && (
        <HealthBadge device={node.name} score={health.get(node.name)} />
      )}
      {node.type && (
        <span className="ml-2 rounded bg-slate-200 px-1.5 text-xs text-slate-800 dark:bg-slate-700 dark:text-slate-100">
          {node.type}
        </span>
      )}
      {kids.length > 0 && (
        <ul className="ml-5 border-l border-slate-300 pl-3 dark:border-slate-600">
          {kids.map((k) => (
            <Tree key={k.name} node={k} children={children} seen={next} online={online} health={health} />
          ))}
        </ul>
      )}
    </li>
  );
}

export function Assets() {
  const health = useHealthScores();
  const graph = useAsync(async () => {
    const [assets, relations, devices] = await Promise.all([
      api("/api/v1/assets").then((b) => listOf<{ name: string; type?: string }>(b, "assets")),
      api("/api/v1/relations?type=contains").then((b) => listOf<Relation>(b, "relations")),
      api("/api/v1/devices").then((b) => listOf<{ name: string; online?: boolean }>(b, "devices")),
    ]);
    const online = new Map(devices.map((d) => [d.name, !!d.online]));
    const nodes = new Map<string, Node>();
    for (const a of assets) nodes.set(a.name, { name: a.name, kind: "asset", type: a.type });
    const children = new Map<string, Node[]>();
    const hasParent = new Set<string>();
    for (const r of relations) {
      if (r.type !== "contains") continue;
      const from = nameOf(r.from);
      const to = nameOf(r.to);
      const toNode: Node =
        nodes.get(to) ??
        (typeof r.to === "string"
          ? { name: to, kind: "device" }
          : { name: to, kind: r.to.kind ?? "device", type: r.to.type });
      nodes.set(to, toNode);
      if (!children.has(from)) children.set(from, []);
      children.get(from)!.push(toNode);
      hasParent.add(to);
    }
    for (const list of children.values()) list.sort((a, b) => a.name.localeCompare(b.name));
    const roots = [...nodes.values()]
      .filter((n) => !hasParent.has(n.name) && n.kind === "asset")
      .sort((a, b) => a.name.localeCompare(b.name));
    return { roots, children, online, count: assets.length };
  }, []);

  return (
    <>
      <PageTitle>Assets</PageTitle>
      <ErrorBox error={graph.error} />
      {graph.loading && !graph.data && <Loading what="assets" />}
      {graph.data && graph.data.roots.length === 0 && <p className="text-sm">No assets yet.</p>}
      {graph.data && graph.data.roots.length > 0 && (
        <ul
          aria-label="Asset tree"
          className="rounded-lg border border-slate-200 bg-white p-4 dark:border-slate-700 dark:bg-slate-900"
        >
          {graph.data.roots.map((r) => (
            <Tree
              key={r.name}
              node={r}
              children={graph.data!.children}
              seen={new Set()}
              online={graph.data!.online}
              health={health.data ?? new Map()}
            />
          ))}
        </ul>
      )}
    </>
  );
}
