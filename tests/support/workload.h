// Test and benchmark data: the benchmark workload's sensor values, generated in C++.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace clisonix::testing {

// A deterministic, single-device version of ../shared/bench/gen.py: the ten metrics of the
// benchmark workload at their sensor resolutions, 10 s apart, each value parsed back from its
// decimal text as the ingest path would.
struct workload {
    static constexpr int metric_count = 10;
    static constexpr const char* names[metric_count] = {
        "temperature", "vibration_rms", "pressure", "current", "voltage",
        "rpm",         "flow",          "humidity", "power",   "torque"};

    // xorshift64* and Box-Muller: the same numbers on every platform.
    uint64_t state;
    double next() {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        return static_cast<double>((state * 2685821657736338717ull) >> 11) * 0x1.0p-53;
    }
    double gauss(double sd) {
        double u = next(), v = next();
        return sd * std::sqrt(-2.0 * std::log(u + 1e-300)) * std::cos(6.283185307179586 * v);
    }
    static double parsed(const char* fmt, double v) {
        char buf[64];
        std::snprintf(buf, sizeof buf, fmt, v);
        return std::strtod(buf, nullptr);
    }

    // values[m][i] for `steps` samples of device number `device`.
    static std::vector<std::vector<double>> make(int device, int steps, int64_t start_s,
                                                 std::vector<int64_t>& ts) {
        workload w{0x9e3779b97f4a7c15ull * static_cast<uint64_t>(device + 1)};
        static constexpr double setpoints[] = {750, 1000, 1450, 1500, 2900, 3000};
        double t_base = 35 + 40 * w.next(), p_base = 2 + 6 * w.next(),
               v_base = 0.8 + 3.2 * w.next();
        double i_base = 10 + 30 * w.next(), f_base = 5 + 75 * w.next(), h_base = 30 + 40 * w.next();
        double rpm = setpoints[static_cast<int>(w.next() * 6)];
        double u_nom = w.next() < 0.5 ? 230.0 : 400.0;
        double temp = t_base, pres = p_base, vib = v_base, cur = i_base, volt = u_nom;
        double hum = h_base, flow = f_base;
        bool running = true;
        std::vector<std::vector<double>> v(metric_count);
        ts.clear();
        for (int s = 0; s < steps; ++s) {
            int64_t t = start_s + 10LL * s;
            ts.push_back(t * 1'000'000'000);
            double day = std::sin(6.283185307179586 * static_cast<double>(t % 86400) / 86400.0);
            if (running) {
                if (w.next() < 0.0004)
                    running = false;
                else if (w.next() < 0.0005)
                    rpm = setpoints[static_cast<int>(w.next() * 6)];
            } else if (w.next() < 0.01) {
                running = true;
            }
            double load = running ? rpm / 1500.0 : 0.0;
            double tb = t_base + 3.0 * day + (running ? 0.0 : -15.0);
            temp += 0.002 * (tb - temp) + w.gauss(0.03);
            v[0].push_back(parsed("%.2f", temp + w.gauss(0.05)));
            vib += 0.01 * ((running ? v_base * load : 0.05) - vib) + w.gauss(0.01);
            vib = std::fabs(vib);
            v[1].push_back(parsed("%.3f", vib * (1 + w.gauss(0.05))));
            pres += 0.005 * ((running ? p_base : 1.0) - pres) + w.gauss(0.005);
            v[2].push_back(parsed("%.3f", pres + w.gauss(0.002)));
            cur += 0.02 * ((running ? i_base * load : 0.2) - cur) + w.gauss(0.05);
            double i_now = std::max(0.0, cur + w.gauss(0.1));
            v[3].push_back(parsed("%.2f", i_now));
            volt += 0.01 * (u_nom - volt) + w.gauss(0.2);
            double u_now = volt + w.gauss(0.3);
            v[4].push_back(parsed("%.1f", u_now));
            double r = running ? rpm + static_cast<int>(w.next() * 5) - 2 : 0;
            v[5].push_back(r);
            flow += 0.02 * (f_base * load - flow) + w.gauss(0.05);
            v[6].push_back(parsed("%.2f", std::max(0.0, flow + w.gauss(0.1))));
            hum += 0.005 * (h_base - 5 * day - hum) + w.gauss(0.05);
            v[7].push_back(parsed("%.1f", std::round(hum * 2) / 2));
            double pw =
                u_nom > 300 ? 1.732 * u_now * i_now * 0.85 / 1000.0 : u_now * i_now * 0.9 / 1000.0;
            v[8].push_back(parsed("%.2f", pw));
            v[9].push_back(parsed("%.1f", running && r > 0 ? pw * 9550.0 / r : 0.0));
        }
        return v;
    }
};

}  // namespace clisonix::testing
