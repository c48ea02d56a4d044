// Small building blocks shared by the pages: error boxes, fields with their error, buttons,
// cards, and a hook that loads data and keeps the error instead of swallowing it.
import { useCallback, useEffect, useId, useRef, useState, type ReactNode } from "react";
import { ApiError } from "../api";

export function errorText(e: unknown): string {
  if (e instanceof ApiError) return `${e.message} (${e.status} ${e.code})`;
  if (e instanceof Error) return e.message;
  return String(e);
}

export function ErrorBox({ error, title }: { error: unknown; title?: string }) {
  if (!error) return null;
  // The router's own 404 (no such route), not a missing record: this server lacks the API.
  const missing = error instanceof ApiError && error.status === 404 && error.message.startsWith("No such resource");
  return (
    <div
      role="alert"
      className="my-3 rounded-md border border-red-300 bg-red-50 p-3 text-sm text-red-900 dark:border-red-700 dark:bg-red-950 dark:text-red-100"
    >
      {title && <strong className="mr-1">{title}:</strong>}
      {errorText(error)}
      {missing && <span className="block pt-1">This server does not offer this part of the API.</span>}
    </div>
  );
}

export function Notice({ children }: { children: ReactNode }) {
  return (
    <div
      role="status"
      className="my-3 rounded-md border border-emerald-300 bg-emerald-50 p-3 text-sm text-emerald-900 dark:border-emerald-700 dark:bg-emerald-950 dark:text-emerald-100"
    >
      {children}
    </div>
  );
}

export function useAsync<T>(load: () => Promise<T>, deps: unknown[]) {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const seq = useRef(0);
  const reload = useCallback(() => {
    const mine = ++seq.current;
    setLoading(true);
    load().then(
      (d) => {
        if (mine !== seq.current) return;
        setData(d);
        setError(null);
        setLoading(false);
      },
      (e) => {
        if (mine !== seq.current) return;
        setError(e);
        setLoading(false);
      },
    );
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);
  useEffect(() => {
    reload();
  }, [reload]);
  return { data, error, loading, reload, setData };
}

export const inputClass =
  "mt-1 block w-full rounded-md border border-slate-400 bg-white px-2 py-1.5 text-slate-900 focus:outline-none focus:ring-2 focus:ring-cyan-600 dark:border-slate-500 dark:bg-slate-900 dark:text-slate-100";

export function Field(props: {
  label: string;
  name: string;
  value: string;
  onChange: (v: string) => void;
  error?: string;
  type?: string;
  hint?: string;
  required?: boolean;
  options?: string[];
  autoComplete?: string;
  placeholder?: string;
}) {
  const id = useId();
  const errId = id + "-err";
  const hintId = id + "-hint";
  const described = [props.error ? errId : "", props.hint ? hintId : ""].filter(Boolean).join(" ") || undefined;
  const common = {
    id,
    name: props.name,
    "aria-invalid": props.error ? true : undefined,
    "aria-describedby": described,
    className: inputClass + (props.error ? " border-red-600 dark:border-red-400" : ""),
  };
  return (
    <div className="mb-3">
      <label htmlFor={id} className="block text-sm font-medium">
        {props.label}
        {props.required && <span aria-hidden="true"> *</span>}
      </label>
      {props.options ? (
        <select
          {...common}
          value={props.value}
          onChange={(e) => props.onChange(e.target.value)}
          required={props.required}
        >
          {props.options.map((o) => (
            <option key={o} value={o}>
              {o || props.placeholder || "any"}
            </option>
          ))}
        </select>
      ) : (
        <input
          {...common}
          type={props.type ?? "text"}
          value={props.value}
          required={props.required}
          autoComplete={props.autoComplete}
          placeholder={props.placeholder}
          onChange={(e) => props.onChange(e.target.value)}
        />
      )}
      {props.hint && (
        <p id={hintId} className="mt-1 text-xs text-slate-600 dark:text-slate-400">
          {props.hint}
        </p>
      )}
      {props.error && (
        <p
          id={errId}
          className="field-error mt-1 text-sm font-medium text-red-700 dark:text-red-300"
          data-field={props.name}
        >
          {props.error}
        </p>
      )}
    </div>
  );
}

export function Button({
  children,
  kind = "primary",
  ...rest
}: React.ButtonHTMLAttributes<HTMLButtonElement> & { kind?: "primary" | "secondary" | "danger" }) {
  const styles = {
    primary: "bg-cyan-700 text-white hover:bg-cyan-800 disabled:bg-slate-400",
    secondary:
      "border border-slate-400 bg-white text-slate-900 hover:bg-slate-100 dark:border-slate-500 dark:bg-slate-800 dark:text-slate-100 dark:hover:bg-slate-700",
    danger: "bg-red-700 text-white hover:bg-red-800 disabled:bg-slate-400",
  }[kind];
  return (
    <button
      type="button"
      {...rest}
      className={`rounded-md px-3 py-1.5 text-sm font-medium focus:outline-none focus:ring-2 focus:ring-cyan-600 focus:ring-offset-1 ${styles} ${rest.className ?? ""}`}
    >
      {children}
    </button>
  );
}

export function Card({ title, children, className }: { title?: string; children: ReactNode; className?: string }) {
  return (
    <section
      className={`rounded-lg border border-slate-200 bg-white p-4 shadow-sm dark:border-slate-700 dark:bg-slate-900 ${className ?? ""}`}
      aria-label={title}
    >
      {title && <h2 className="mb-2 text-base font-semibold">{title}</h2>}
      {children}
    </section>
  );
}

export function PageTitle({ children, actions }: { children: ReactNode; actions?: ReactNode }) {
  return (
    <div className="mb-4 flex flex-wrap items-center justify-between gap-2">
      <h1 className="text-xl font-semibold">{children}</h1>
      {actions && <div className="flex flex-wrap gap-2">{actions}</div>}
    </div>
  );
}

export const severityStyle: Record<string, string> = {
  critical: "bg-red-700 text-white",
  major: "bg-orange-700 text-white",
  minor: "bg-amber-300 text-slate-900",
  warning: "bg-sky-700 text-white",
};

export function SeverityBadge({ severity }: { severity: string }) {
  return (
    <span
      className={`inline-block rounded px-2 py-0.5 text-xs font-semibold ${severityStyle[severity] ?? "bg-slate-600 text-white"}`}
    >
      {severity}
    </span>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p role="status" className="text-sm text-slate-600 dark:text-slate-400">
      Loading {what}…
    </p>
  );
}

export function Table({ caption, head, children }: { caption: string; head: string[]; children: ReactNode }) {
  return (
    <div className="overflow-x-auto rounded-lg border border-slate-200 dark:border-slate-700">
      <table className="min-w-full text-left text-sm">
        <caption className="sr-only">{caption}</caption>
        <thead className="bg-slate-100 dark:bg-slate-800">
          <tr>
            {head.map((h) => (
              <th key={h} scope="col" className="px-3 py-2 font-semibold">
                {h}
              </th>
            ))}
          </tr>
        </thead>
        <tbody className="divide-y divide-slate-200 bg-white dark:divide-slate-700 dark:bg-slate-900">{children}</tbody>
      </table>
    </div>
  );
}

export function td(extra = "") {
  return "px-3 py-2 align-top " + extra;
}

export function fmtTime(ms: unknown): string {
  if (typeof ms !== "number" || !ms) return "—";
  return new Date(ms).toLocaleString();
}

export function fmtValue(v: unknown): string {
  if (typeof v === "number")
    return Math.abs(v) >= 1000 || Number.isInteger(v) ? String(Math.round(v * 100) / 100) : v.toPrecision(4);
  if (v === null || v === undefined) return "—";
  return String(v);
}
