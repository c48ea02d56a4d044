// Cross-validation of the machine health model's constants on SKAB (docs/health.md).
// A standalone sweep, not part of the build: it re-implements the model (kind 0, as in
// src/analytics/health.cpp) and PCA T² + Q (kind 1) with every constant open, scores each
// setting on the 16 valve1 files and on 8 normal-only chunks of anomaly-free.csv (1150 rows:
// 400 baseline + 750 scored), then picks on 12 files and reports the held-out 4, for two
// foldings of the files (consecutive numbers, and number mod 4).
//   g++ -O2 -std=c++20 bench/health_cv.cpp -o /tmp/health_cv && /tmp/health_cv ../shared/skab
// Selection rule: the highest F1 among settings with FAR <= 15 % on the 12 files and on the
// anomaly-free chunks; the held-out files never influence their own fold's choice.
#include <bits/stdc++.h>
using namespace std;
struct file_data {
    string name;
    vector<vector<double>> rows;
    vector<int> label;
};
inline file_data load(const string& path) {
    file_data f;
    f.name = path;
    ifstream in(path);
    if (!in) {
        fprintf(stderr, "cannot read %s (the argument is the SKAB folder)\n", path.c_str());
        exit(2);
    }
    string line;
    getline(in, line);
    while (getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) continue;
        vector<string> c;
        string cur;
        stringstream ss(line);
        while (getline(ss, cur, ';'))
            c.push_back(cur);
        vector<double> r;
        for (int i = 1; i <= 8; ++i)
            r.push_back(stod(c[i]));
        f.rows.push_back(r);
        f.label.push_back(c.size() > 9 ? int(stod(c[9])) : 0);
    }
    return f;
}
// symmetric Jacobi eigen
void jacobi(vector<vector<double>> a, vector<double>& ev, vector<vector<double>>& V) {
    int n = a.size();
    V.assign(n, vector<double>(n, 0));
    for (int i = 0; i < n; ++i)
        V[i][i] = 1;
    for (int sweep = 0; sweep < 100; ++sweep) {
        double off = 0;
        for (int i = 0; i < n; ++i)
            for (int j = i + 1; j < n; ++j)
                off += a[i][j] * a[i][j];
        if (off < 1e-22) break;
        for (int p = 0; p < n; ++p)
            for (int q = p + 1; q < n; ++q) {
                if (fabs(a[p][q]) < 1e-300) continue;
                double th = (a[q][q] - a[p][p]) / (2 * a[p][q]);
                double t = (th >= 0 ? 1 : -1) / (fabs(th) + sqrt(th * th + 1));
                double c = 1 / sqrt(t * t + 1), s = t * c;
                for (int k = 0; k < n; ++k) {
                    double akp = a[k][p], akq = a[k][q];
                    a[k][p] = c * akp - s * akq;
                    a[k][q] = s * akp + c * akq;
                }
                for (int k = 0; k < n; ++k) {
                    double apk = a[p][k], aqk = a[q][k];
                    a[p][k] = c * apk - s * aqk;
                    a[q][k] = s * apk + c * aqk;
                }
                for (int k = 0; k < n; ++k) {
                    double vkp = V[k][p], vkq = V[k][q];
                    V[k][p] = c * vkp - s * vkq;
                    V[k][q] = s * vkp + c * vkq;
                }
            }
    }
    ev.resize(n);
    for (int i = 0; i < n; ++i)
        ev[i] = a[i][i];
}
struct cfg {
    int kind;
    double drift;
    double var_keep;
    double alpha;
    double q;
    double k;
    int loo;
    int agg = 0;
    double pre = 1.0;
};
struct model {
    cfg c;
    int d;
    vector<double> mu, sd;
    vector<vector<double>> P;
    vector<double> lam;
    int ncomp;
    double thr;
    double ew;
    bool init = false;
    vector<double> xs;
    bool xinit = false;
    double raw(const vector<double>& x0) {
        vector<double> x = x0;
        if (c.pre < 1) {
            if (!xinit) {
                xs = x0;
                xinit = true;
            } else
                for (int m = 0; m < d; ++m)
                    xs[m] = c.pre * x0[m] + (1 - c.pre) * xs[m];
            x = xs;
        }
        vector<double> z(d);
        for (int m = 0; m < d; ++m)
            z[m] = (x[m] - mu[m]) / sd[m];
        if (c.kind == 0) {
            double s = 0, mx = 0;
            for (double v : z) {
                s += v * v;
                mx = max(mx, v * v);
            }
            return c.agg ? mx : s / d;
        }
        // PCA: T2 over kept comps, Q over rest. combined: T2/ncomp + Q/(residual)
        double t2 = 0, q = 0;
        for (int j = 0; j < d; ++j) {
            double t = 0;
            for (int m = 0; m < d; ++m)
                t += P[m][j] * z[m];
            if (j < ncomp)
                t2 += t * t / lam[j];
            else
                q += t * t;
        }
        if (c.kind == 1) return t2 / ncomp + (d > ncomp ? q / max(1e-9, resid) : 0);
        return t2;
    }
    double resid;
    double smooth(double r) {
        if (!init) {
            ew = r;
            init = true;
        } else
            ew = c.alpha * r + (1 - c.alpha) * ew;
        return ew;
    }
};
model fit(const vector<vector<double>>& rows0, const cfg& c, bool calib = true) {
    vector<vector<double>> rows = rows0;
    if (c.pre < 1)
        for (size_t r = 1; r < rows.size(); ++r)
            for (size_t m = 0; m < rows[r].size(); ++m)
                rows[r][m] = c.pre * rows0[r][m] + (1 - c.pre) * rows[r - 1][m];
    model M;
    M.c = c;
    M.d = rows[0].size();
    int d = M.d, n = rows.size();
    M.mu.assign(d, 0);
    M.sd.assign(d, 0);
    for (auto& r : rows)
        for (int m = 0; m < d; ++m)
            M.mu[m] += r[m] / n;
    for (auto& r : rows)
        for (int m = 0; m < d; ++m)
            M.sd[m] += (r[m] - M.mu[m]) * (r[m] - M.mu[m]) / (n - 1);
    for (int m = 0; m < d; ++m) {
        double v = M.sd[m];
        if (c.drift > 0) {  // block means: 4 blocks; add drift var
            int B = 4;
            vector<double> bm(B, 0);
            for (int b = 0; b < B; ++b) {
                int lo = b * n / B, hi = (b + 1) * n / B;
                for (int r = lo; r < hi; ++r)
                    bm[b] += rows[r][m] / (hi - lo);
            }
            double mx = *max_element(bm.begin(), bm.end()), mn = *min_element(bm.begin(), bm.end());
            v += c.drift * (mx - mn) * (mx - mn);
        }
        M.sd[m] = max(sqrt(v), 1e-9 + 1e-6 * fabs(M.mu[m]));
    }
    if (c.kind >= 1) {
        vector<vector<double>> C(d, vector<double>(d, 0));
        for (auto& r : rows)
            for (int i = 0; i < d; ++i)
                for (int j = 0; j < d; ++j)
                    C[i][j] += (r[i] - M.mu[i]) / M.sd[i] * (r[j] - M.mu[j]) / M.sd[j] / (n - 1);
        vector<double> ev;
        jacobi(C, ev, M.P);
        vector<int> idx(d);
        iota(idx.begin(), idx.end(), 0);
        sort(idx.begin(), idx.end(), [&](int a, int b) { return ev[a] > ev[b]; });
        auto P2 = M.P;
        M.lam.resize(d);
        for (int j = 0; j < d; ++j) {
            M.lam[j] = max(ev[idx[j]], 1e-6);
            for (int m = 0; m < d; ++m)
                P2[m][j] = M.P[m][idx[j]];
        }
        M.P = P2;
        double tot = 0;
        for (double l : M.lam)
            tot += l;
        double acc = 0;
        M.ncomp = 0;
        while (M.ncomp < d && acc < c.var_keep * tot) {
            acc += M.lam[M.ncomp];
            M.ncomp++;
        }
        if (c.kind == 2) M.ncomp = d;
        M.resid = 0;
        for (int j = M.ncomp; j < d; ++j)
            M.resid += M.lam[j];
        M.resid = max(M.resid, 1e-3 * tot);
    }
    if (calib) {
        vector<double> s;
        if (c.loo) {  // fit on 3/4 blocks, score held out quarter in order
            int B = 4;
            for (int b = 0; b < B; ++b) {
                int lo = b * n / B, hi = (b + 1) * n / B;
                vector<vector<double>> tr;
                for (int r = 0; r < n; ++r)
                    if (r < lo || r >= hi) tr.push_back(rows0[r]);
                model m2 = fit(tr, c, false);
                for (int r = lo; r < hi; ++r) {
                    double v = m2.smooth(m2.raw(rows0[r]));
                    if (r - lo >= 20) s.push_back(v);
                }
            }
        } else {
            M.init = false;
            M.xinit = false;
            int i = 0;
            for (auto& r : rows0) {
                double v = M.smooth(M.raw(r));
                if (i++ >= 20) s.push_back(v);
            }
            M.init = false;
            M.xinit = false;
        }
        sort(s.begin(), s.end());
        M.thr = c.k * s[min<size_t>(s.size() - 1, size_t(c.q * s.size()))];
    }
    return M;
}
struct cm {
    long tp = 0, fp = 0, tn = 0, fn = 0;
    void add(const cm& o) {
        tp += o.tp;
        fp += o.fp;
        tn += o.tn;
        fn += o.fn;
    }
    double f1() const { return 2.0 * tp / max(1L, 2 * tp + fp + fn); }
    double far() const { return 100.0 * fp / max(1L, fp + tn); }
    double mar() const { return 100.0 * fn / max(1L, fn + tp); }
};
cm run(const file_data& f, const cfg& c, size_t b = 0, size_t e = 0) {
    if (!e) e = f.rows.size();
    vector<vector<double>> tr(f.rows.begin() + b, f.rows.begin() + b + 400);
    model M = fit(tr, c);
    cm r;
    M.init = false;
    M.xinit = false;
    for (size_t i = b; i < b + 400; ++i)
        M.smooth(M.raw(f.rows[i]));
    for (size_t i = b + 400; i < e; ++i) {
        double s = M.smooth(M.raw(f.rows[i]));
        bool p = s >= M.thr;
        if (p && f.label[i])
            r.tp++;
        else if (p)
            r.fp++;
        else if (f.label[i])
            r.fn++;
        else
            r.tn++;
    }
    return r;
}
int main(int argc, char** argv) {
    string dir = argc > 1 ? argv[1] : "../shared/skab";
    vector<file_data> F;
    for (int k = 0; k < 16; ++k)
        F.push_back(load(dir + "/valve1/" + to_string(k) + ".csv"));
    auto AF = load(dir + "/anomaly-free/anomaly-free.csv");
    vector<cfg> grid;
    for (int kind : {0, 1})
        for (int agg : {0})
            for (double pre : {0.2, 0.1, 0.05})
                for (double drift : {0.0, 1.0, 2.0, 4.0})
                    for (double vk : {0.9})
                        for (double al : {1.0, 0.3, 0.1})
                            for (double q : {0.95, 0.99, 1.0})
                                for (double k : {1.5, 2.0, 3.0, 4.0, 6.0})
                                    for (int loo : {0, 1}) {
                                        grid.push_back({kind, drift, vk, al, q, k, loo, agg, pre});
                                    }
    const size_t refs = grid.size();
    grid.push_back(
        {1, 0, 0.9, 1.0, 0.99, 1.0, 0, 0, 1.0});  // T2 + Q as SKAB runs it: raw rows, 99th pct
    grid.push_back({0, 1.0, 0.9, 0.1, 1.0, 4.0, 0, 0, 0.05});  // the product's constants
    vector<cm> per(grid.size() * 16);
    vector<cm> afr(grid.size());
    for (size_t g = 0; g < grid.size(); ++g) {
        for (int f = 0; f < 16; ++f)
            per[g * 16 + f] = run(F[f], grid[g]);
        for (size_t b = 0; b + 1150 <= AF.rows.size(); b += 1150)
            afr[g].add(run(AF, grid[g], b, b + 1150));
    }
    auto pr = [&](const cfg& c) {
        printf("kind=%d agg=%d pre=%.2f drift=%.1f vk=%.2f a=%.2f q=%.2f k=%.1f loo=%d", c.kind,
               c.agg, c.pre, c.drift, c.var_keep, c.alpha, c.q, c.k, c.loo);
    };
    // full-set top 15 by F1 with FAR<=15
    vector<pair<double, int>> rank;
    for (size_t g = 0; g < grid.size(); ++g) {
        cm t;
        for (int f = 0; f < 16; ++f)
            t.add(per[g * 16 + f]);
        rank.push_back({(t.far() <= 15 && afr[g].far() <= 15) ? t.f1() : t.f1() - 1, (int)g});
    }
    sort(rank.rbegin(), rank.rend());
    for (auto [score, g] : rank)
        if (grid[g].kind == 1) {
            cm t;
            for (int f = 0; f < 16; ++f)
                t.add(per[g * 16 + f]);
            printf("best PCA T2+Q:    ");
            pr(grid[g]);
            printf("  F1=%.3f FAR=%.1f MAR=%.1f  AF-FAR=%.1f\n", t.f1(), t.far(), t.mar(),
                   afr[g].far());
            break;
        }
    for (int i = 0; i < 25; ++i) {
        int g = rank[i].second;
        cm t;
        for (int f = 0; f < 16; ++f)
            t.add(per[g * 16 + f]);
        pr(grid[g]);
        printf("  F1=%.3f FAR=%.1f MAR=%.1f  AF-FAR=%.1f\n", t.f1(), t.far(), t.mar(),
               afr[g].far());
    }
    for (size_t g = refs; g < grid.size(); ++g) {
        cm t;
        for (int f = 0; f < 16; ++f)
            t.add(per[g * 16 + f]);
        printf(g == refs ? "reference T2+Q:   " : "product:          ");
        pr(grid[g]);
        printf("  F1=%.3f FAR=%.1f MAR=%.1f  AF-FAR=%.1f\n", t.f1(), t.far(), t.mar(),
               afr[g].far());
        for (int fold = 0; fold < 4; ++fold) {
            cm h;
            for (int f = 0; f < 16; ++f)
                if (f / 4 == fold) h.add(per[g * 16 + f]);
            printf("    files %d-%d: F1=%.3f FAR=%.1f MAR=%.1f\n", fold * 4, fold * 4 + 3, h.f1(),
                   h.far(), h.mar());
        }
    }
    for (int scheme = 0; scheme < 2; ++scheme) {
        auto fold_of = [&](int f) { return scheme == 0 ? f / 4 : f % 4; };
        printf("CV, folds by %s:\n",
               scheme == 0 ? "consecutive file numbers" : "file number mod 4");
        cm pooled;
        for (int fold = 0; fold < 4; ++fold) {
            double best = -9;
            int bg = 0;
            for (size_t g = 0; g < refs; ++g) {
                cm t;
                for (int f = 0; f < 16; ++f)
                    if (fold_of(f) != fold) t.add(per[g * 16 + f]);
                double sc = (t.far() <= 15 && afr[g].far() <= 15) ? t.f1() : t.f1() - 1;
                if (sc > best) {
                    best = sc;
                    bg = g;
                }
            }
            cm h;
            for (int f = 0; f < 16; ++f)
                if (fold_of(f) == fold) h.add(per[bg * 16 + f]);
            pooled.add(h);
            printf("  fold %d: ", fold);
            pr(grid[bg]);
            printf(" held-out F1=%.3f FAR=%.1f MAR=%.1f\n", h.f1(), h.far(), h.mar());
        }
        printf("  pooled held-out F1=%.3f FAR=%.1f MAR=%.1f\n", pooled.f1(), pooled.far(),
               pooled.mar());
    }
}
