// Users (admin only): list, create, change role, disable, delete.
import { useState } from "react";
import { ApiError, api, listOf } from "../api";
import { Button, Card, ErrorBox, Field, Notice, PageTitle, Table, fmtTime, td, useAsync } from "../components/ui";

interface User {
  username: string;
  role: string;
  disabled: boolean;
  created_at?: number;
}

export function Users({ me }: { me: string }) {
  const users = useAsync(async () => listOf<User>(await api("/api/v1/users"), "users"), []);
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [role, setRole] = useState("viewer");
  const [error, setError] = useState<unknown>(null);
  const [actionError, setActionError] = useState<unknown>(null);
  const [notice, setNotice] = useState("");

  async function create(e: React.FormEvent) {
    e.preventDefault();
    try {
      await api("/api/v1/users", { method: "POST", body: { username, password, role } });
      setNotice(`User ${username} created.`);
      setUsername("");
      setPassword("");
      setError(null);
      users.reload();
    } catch (err) {
      setError(err);
    }
  }
  async function patch(u: User, change: Record<string, unknown>, what: string) {
    try {
      await api("/api/v1/users/" + encodeURIComponent(u.username), { method: "PATCH", body: change });
      setNotice(`${u.username}: ${what}.`);
      setActionError(null);
      users.reload();
    } catch (err) {
      setActionError(err);
    }
  }
  async function remove(u: User) {
    if (!confirm(`Delete user ${u.username}?`)) return;
    try {
      await api("/api/v1/users/" + encodeURIComponent(u.username), { method: "DELETE" });
      setNotice(`User ${u.username} deleted.`);
      users.reload();
    } catch (err) {
      setActionError(err);
    }
  }
  const fieldErr = (f: string) => (error instanceof ApiError && error.field === f ? error.message : undefined);
  const general =
    error && !(error instanceof ApiError && ["username", "password", "role"].includes(error.field ?? ""))
      ? error
      : null;

  return (
    <>
      <PageTitle>Users</PageTitle>
      {notice && <Notice>{notice}</Notice>}
      <Card title="New user" className="mb-4">
        <form onSubmit={create} className="grid gap-x-4 sm:grid-cols-4" noValidate>
          <Field
            label="Username"
            name="username"
            value={username}
            onChange={setUsername}
            required
            error={fieldErr("username")}
            autoComplete="off"
          />
          <Field
            label="Password"
            name="password"
            type="password"
            value={password}
            onChange={setPassword}
            required
            error={fieldErr("password")}
            autoComplete="new-password"
          />
          <Field
            label="Role"
            name="role"
            value={role}
            onChange={setRole}
            options={["viewer", "operator", "admin"]}
            error={fieldErr("role")}
          />
          <div className="flex items-end pb-3">
            <Button type="submit">Create user</Button>
          </div>
        </form>
        <ErrorBox error={general} />
      </Card>
      <ErrorBox error={users.error} />
      <ErrorBox error={actionError} title="Action failed" />
      {users.data && (
        <Table caption="Users" head={["User", "Role", "Status", "Created", "Actions"]}>
          {users.data.map((u) => (
            <tr key={u.username}>
              <td className={td("font-medium")}>{u.username}</td>
              <td className={td()}>
                <label className="sr-only" htmlFor={"role-" + u.username}>
                  Role of {u.username}
                </label>
                <select
                  id={"role-" + u.username}
                  value={u.role}
                  disabled={u.username === me}
                  onChange={(e) => patch(u, { role: e.target.value }, "role now " + e.target.value)}
                  className="rounded border border-slate-400 bg-white px-1 py-0.5 dark:border-slate-500 dark:bg-slate-900"
                >
                  {["viewer", "operator", "admin"].map((r) => (
                    <option key={r}>{r}</option>
                  ))}
                </select>
              </td>
              <td className={td()}>{u.disabled ? "disabled" : "active"}</td>
              <td className={td()}>{fmtTime(u.created_at)}</td>
              <td className={td("whitespace-nowrap")}>
                {u.username !== me && (
                  <div className="flex gap-1">
                    <Button
                      kind="secondary"
                      onClick={() => patch(u, { disabled: !u.disabled }, u.disabled ? "enabled" : "disabled")}
                    >
                      {u.disabled ? "Enable" : "Disable"}
                      <span className="sr-only"> {u.username}</span>
                    </Button>
                    <Button kind="danger" onClick={() => remove(u)}>
                      Delete<span className="sr-only"> {u.username}</span>
                    </Button>
                  </div>
                )}
              </td>
            </tr>
          ))}
        </Table>
      )}
    </>
  );
}
