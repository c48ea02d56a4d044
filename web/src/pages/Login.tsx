import { useState } from "react";
import { login } from "../api";
import { Button, ErrorBox, Field } from "../components/ui";

export function Login({ notice, onLoggedIn }: { notice?: string; onLoggedIn: () => void }) {
  const [username, setUsername] = useState("admin");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await login(username, password);
      onLoggedIn();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <main className="flex min-h-screen items-center justify-center p-4">
      <form
        onSubmit={submit}
        aria-labelledby="login-title"
        className="w-full max-w-sm rounded-lg border border-slate-200 bg-white p-6 shadow dark:border-slate-700 dark:bg-slate-900"
      >
        <h1 id="login-title" className="mb-1 text-2xl font-semibold">
          Clisonix
        </h1>
        <p className="mb-4 text-sm text-slate-600 dark:text-slate-400">Log in to the dashboard.</p>
        {notice && (
          <p
            role="status"
            className="mb-3 rounded bg-amber-100 p-2 text-sm text-amber-950 dark:bg-amber-900 dark:text-amber-50"
          >
            {notice}
          </p>
        )}
        <Field
          label="Username"
          name="username"
          value={username}
          onChange={setUsername}
          autoComplete="username"
          required
        />
        <Field
          label="Password"
          name="password"
          type="password"
          value={password}
          onChange={setPassword}
          autoComplete="current-password"
          required
        />
        <ErrorBox error={error} />
        <Button type="submit" disabled={busy} className="w-full">
          {busy ? "Logging in…" : "Log in"}
        </Button>
      </form>
    </main>
  );
}
