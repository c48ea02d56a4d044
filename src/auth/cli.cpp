// `clisonix user ...`: user management from the command line, on the metadata store.
#include <iomanip>
#include <ostream>

#include "auth/auth.h"
#include "auth/crypto.h"

namespace clisonix::auth {

namespace {

constexpr int exit_ok = 0;
constexpr int exit_failure = 1;
constexpr int exit_usage = 2;

// Mistakes in what was typed are usage errors; the rest (database down ...) are failures.
int exit_code_of(const error& e) {
    if (e.code == "invalid_argument" || e.code == "not_found" || e.code == "conflict") {
        return exit_usage;
    }
    return exit_failure;
}

int report(const error& e, std::ostream& err) {
    err << "user: " << e.message << "\n";
    return exit_code_of(e);
}

}  // namespace

int run_user_command(meta::store& store, const options& opts, const user_command& cmd,
                     std::ostream& out, std::ostream& err) {
    const std::string& a = cmd.action;
    if (a != "add" && a != "list" && a != "passwd" && a != "disable" && a != "enable") {
        err << "user: unknown action \"" << a << "\"; use add, list, passwd, disable or enable\n";
        return exit_usage;
    }
    if (a != "list" && cmd.username.empty()) {
        err << "user " << a << ": a username is required\n";
        return exit_usage;
    }
    options o = opts;
    // The command line signs no tokens; any key will do when none was loaded.
    if (o.jwt_secret.size() < 32) o.jwt_secret = detail::random_bytes(32);
    auth_service service(store, o);
    const actor by{"cli", "local"};

    if (a == "list") {
        auto users = service.list_users();
        if (!users) return report(users.error(), err);
        out << std::left << std::setw(24) << "USERNAME" << std::setw(10) << "ROLE"
            << "STATUS\n";
        for (const auto& u : *users) {
            out << std::left << std::setw(24) << u.username << std::setw(10) << u.role
                << (u.disabled ? "disabled" : "enabled") << "\n";
        }
        return exit_ok;
    }
    if (a == "disable" || a == "enable") {
        user_update change;
        change.disabled = a == "disable";
        auto u = service.update_user(cmd.username, change, by);
        if (!u) return report(u.error(), err);
        out << (a == "disable" ? "disabled" : "enabled") << " user " << u->username << "\n";
        return exit_ok;
    }

    const bool generate = !cmd.password;
    const std::string password = generate ? detail::random_token("", 18) : *cmd.password;
    if (a == "add") {
        auto u = service.create_user(cmd.username, password, cmd.role, by);
        if (!u) return report(u.error(), err);
        out << "created user " << u->username << " (" << u->role << ")\n";
    } else {
        user_update change;
        change.password = password;
        auto u = service.update_user(cmd.username, change, by);
        if (!u) return report(u.error(), err);
        out << "changed the password of " << u->username << "\n";
    }
    // Printed once, here only: it is stored as a hash and never logged.
    if (generate) out << "password: " << password << "\n";
    return exit_ok;
}

}  // namespace clisonix::auth
