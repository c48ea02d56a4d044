// The shell: session, theme, navigation and the page for the current path.
import { useEffect, useState } from "react";
import { currentSession, logout, onSessionChange, type Session } from "./api";
import { Button } from "./components/ui";
import { Alarms } from "./pages/Alarms";
import { ApiReference } from "./pages/ApiReference";
import { Assets } from "./pages/Assets";
import { Audit } from "./pages/Audit";
import { Channels } from "./pages/Channels";
import { Connectors } from "./pages/Connectors";
import { DeviceDetail } from "./pages/DeviceDetail";
import { DeviceTypes } from "./pages/DeviceTypes";
import { Devices } from "./pages/Devices";
import { Login } from "./pages/Login";
import { Overview } from "./pages/Overview";
import { Rules } from "./pages/Rules";
import { Users } from "./pages/Users";
import { linkClick, navigate, usePath } from "./router";

type Theme = "light" | "dark";

function initialTheme(): Theme {
  const saved = localStorage.getItem("clisonix.theme");
  if (saved === "light" || saved === "dark") return saved;
  return window.matchMedia?.("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

const nav: { path: string; label: string; admin?: boolean }[] = [
  { path: "/", label: "Overview" },
  { path: "/assets", label: "Assets" },
  { path: "/devices", label: "Devices" },
  { path: "/device-types", label: "Device types" },
  { path: "/alarms", label: "Alarms" },
  { path: "/rules", label: "Rules" },
  { path: "/connectors", label: "Connectors", admin: true },
  { path: "/channels", label: "Channels", admin: true },
  { path: "/users", label: "Users", admin: true },
  { path: "/audit", label: "Audit log", admin: true },
  { path: "/api-reference", label: "API reference" },
];

function NotFound({ path }: { path: string }) {
  return (
    <div role="alert">
      <h1 className="text-xl font-semibold">Not found</h1>
      <p>There is no page at {path}.</p>
    </div>
  );
}

function Forbidden() {
  return (
    <div role="alert">
      <h1 className="text-xl font-semibold">Admins only</h1>
      <p>This page needs the admin role.</p>
    </div>
  );
}

export function App() {
  const [session, setSession] = useState<Session | null>(currentSession);
  const [notice, setNotice] = useState<string | undefined>();
  const [theme, setTheme] = useState<Theme>(initialTheme);
  const [menuOpen, setMenuOpen] = useState(false);
  const path = usePath();

  useEffect(() => {
    document.documentElement.classList.toggle("dark", theme === "dark");
    localStorage.setItem("clisonix.theme", theme);
  }, [theme]);

  useEffect(
    () =>
      onSessionChange((s, reason) => {
        setSession(s);
        if (!s) {
          setNotice(reason);
          if (location.pathname !== "/login") {
            sessionStorage.setItem("clisonix.next", location.pathname + location.search);
            navigate("/login", true);
          }
        }
      }),
    [],
  );

  useEffect(() => {
    if (!session && path !== "/login") {
      sessionStorage.setItem("clisonix.next", location.pathname + location.search);
      navigate("/login", true);
    }
    if (session && path === "/login") navigate("/", true);
    setMenuOpen(false);
  }, [session, path]);

  useEffect(() => {
    const label = nav.find((n) => n.path === path)?.label ?? (path.startsWith("/devices/") ? "Device" : "Clisonix");
    document.title = path === "/login" ? "Log in · Clisonix" : `${label} · Clisonix`;
  }, [path]);

  if (!session || path === "/login") {
    return (
      <Login
        notice={notice}
        onLoggedIn={() => {
          setNotice(undefined);
          const next = sessionStorage.getItem("clisonix.next");
          sessionStorage.removeItem("clisonix.next");
          navigate(next && next !== "/login" ? next : "/", true);
        }}
      />
    );
  }

  const admin = session.role === "admin";
  const canManage = admin || session.role === "operator";
  let page: React.ReactNode;
  if (path === "/") page = <Overview dark={theme === "dark"} />;
  else if (path === "/assets") page = <Assets />;
  else if (path === "/devices") page = <Devices canManage={canManage} />;
  else if (path === "/device-types") page = <DeviceTypes canManage={canManage} />;
  else if (path.startsWith("/devices/")) {
    const name = decodeURIComponent(path.slice("/devices/".length));
    page = <DeviceDetail key={name} name={name} dark={theme === "dark"} canManage={canManage} />;
  } else if (path === "/alarms") page = <Alarms canAct={canManage} />;
  else if (path === "/rules") page = <Rules admin={admin} />;
  else if (path === "/connectors") page = admin ? <Connectors /> : <Forbidden />;
  else if (path === "/channels") page = admin ? <Channels /> : <Forbidden />;
  else if (path === "/users") page = admin ? <Users me={session.username} /> : <Forbidden />;
  else if (path === "/audit") page = admin ? <Audit /> : <Forbidden />;
  else if (path === "/api-reference") page = <ApiReference />;
  else page = <NotFound path={path} />;

  const current = (p: string) => (p === "/" ? path === "/" : path === p || path.startsWith(p + "/"));

  return (
    <div className="min-h-screen md:flex">
      <a
        href="#main"
        className="sr-only focus:not-sr-only focus:absolute focus:left-2 focus:top-2 focus:z-10 focus:bg-white focus:p-2 focus:text-slate-900"
      >
        Skip to content
      </a>
      <header className="border-b border-slate-200 bg-white dark:border-slate-800 dark:bg-slate-900 md:min-h-screen md:w-56 md:shrink-0 md:border-b-0 md:border-r">
        <div className="flex items-center justify-between p-3">
          <a href="/" onClick={linkClick} className="text-lg font-bold text-cyan-800 dark:text-cyan-300">
            Clisonix
          </a>
          <Button
            kind="secondary"
            className="md:hidden"
            aria-expanded={menuOpen}
            aria-controls="main-nav"
            onClick={() => setMenuOpen(!menuOpen)}
          >
            Menu
          </Button>
        </div>
        <nav id="main-nav" aria-label="Main" className={`${menuOpen ? "block" : "hidden"} px-2 pb-3 md:block`}>
          <ul>
            {nav
              .filter((n) => !n.admin || admin)
              .map((n) => (
                <li key={n.path}>
                  <a
                    href={n.path}
                    onClick={linkClick}
                    aria-current={current(n.path) ? "page" : undefined}
                    className={`block rounded px-3 py-2 text-sm ${
                      current(n.path)
                        ? "bg-cyan-700 font-semibold text-white"
                        : "text-slate-800 hover:bg-slate-100 dark:text-slate-200 dark:hover:bg-slate-800"
                    }`}
                  >
                    {n.label}
                  </a>
                </li>
              ))}
          </ul>
          <div className="mt-4 border-t border-slate-200 px-3 pt-3 text-sm dark:border-slate-700">
            <p className="mb-2">
              <span className="font-medium" data-testid="whoami">
                {session.username}
              </span>{" "}
              <span className="text-slate-600 dark:text-slate-400">({session.role})</span>
            </p>
            <div className="flex flex-wrap gap-2">
              <Button
                kind="secondary"
                onClick={() => setTheme(theme === "dark" ? "light" : "dark")}
                aria-pressed={theme === "dark"}
              >
                Dark theme
              </Button>
              <Button kind="secondary" onClick={() => void logout()}>
                Log out
              </Button>
            </div>
          </div>
        </nav>
      </header>
      <main id="main" className="min-w-0 flex-1 p-4 md:p-6">
        {page}
      </main>
    </div>
  );
}
