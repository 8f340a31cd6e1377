#include <ATen/Parallel.h>

#include <algorithm>
#include <functional>
#include <tuple>

#include "paf/paf.h"

namespace pyhpe {
namespace paf {

template <typename T>
void find_peaks_cpu(const PeakArgs<T>& args) {
  at::parallel_for(0, args.channels, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) peak_channel(args, c);
  });
}

template <typename T>
void peak_flags_cpu(const PeakArgs<T>& args) {
  const int64_t total = args.channels * args.H * args.W;
  at::parallel_for(0, total, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t idx = begin; idx < end; ++idx) peak_flag_element(args, idx);
  });
}

template <typename T>
void peak_write_cpu(const PeakArgs<T>& args) {
  const int64_t total = args.channels * args.H * args.W;
  at::parallel_for(0, total, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t idx = begin; idx < end; ++idx) peak_write_element(args, idx);
  });
}

template <typename T>
void paf_scores_cpu(const ScoreArgs<T>& args) {
  const int64_t rows = args.B * args.L * args.M;
  at::parallel_for(0, rows, 16, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) score_row(args, row);
  });
}

namespace {

// Minimum-cost assignment of n rows to m >= n columns (Kuhn-Munkres with potentials).
// Returns the column of each row.
std::vector<int> min_cost_assignment(const std::vector<double>& cost, int n, int m) {
  const double inf = 1e300;
  std::vector<double> u(n + 1, 0.0), v(m + 1, 0.0);
  std::vector<int> p(m + 1, 0), way(m + 1, 0);
  for (int i = 1; i <= n; ++i) {
    p[0] = i;
    int j0 = 0;
    std::vector<double> minv(m + 1, inf);
    std::vector<char> used(m + 1, 0);
    do {
      used[j0] = 1;
      const int i0 = p[j0];
      double delta = inf;
      int j1 = 0;
      for (int j = 1; j <= m; ++j) {
        if (used[j]) continue;
        const double cur = cost[(i0 - 1) * m + (j - 1)] - u[i0] - v[j];
        if (cur < minv[j]) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j] < delta) {
          delta = minv[j];
          j1 = j;
        }
      }
      for (int j = 0; j <= m; ++j) {
        if (used[j]) {
          u[p[j]] += delta;
          v[j] -= delta;
        } else {
          minv[j] -= delta;
        }
      }
      j0 = j1;
    } while (p[j0] != 0);
    do {
      const int j1 = way[j0];
      p[j0] = p[j1];
      j0 = j1;
    } while (j0);
  }
  std::vector<int> row_to_col(n, -1);
  for (int j = 1; j <= m; ++j)
    if (p[j] != 0) row_to_col[p[j] - 1] = j - 1;
  return row_to_col;
}

// A person under construction: parts hold 1-based peak numbers, 0 where missing.
template <typename T>
struct Person {
  std::vector<int> parts;
  int count;
  T score;
};

// pafPtrIntoVector + pafVectorIntoPeopleVector (OpenPose's GPU-build assembly).
// removePeopleBelowThresholds (CPU build) or removePeopleBelowThresholdsAndFillFaces (GPU
// build; they differ for BODY_25 feet only), then peopleVectorToPeopleArray.
template <typename T>
void filter_people(const GroupArgs<T>& a, const std::vector<Person<T>>& people,
                   GroupedImage<T>& result) {
  const int K = a.K, L = a.L;
  auto run = [&](bool maximize_positives) {
    result.parts.clear();
    result.scores.clear();
    int64_t kept = 0;
    if (a.max_persons == 0) return kept;
    for (const auto& p : people) {
      int counter = p.count;
      if (K == 25 && !maximize_positives) {  // BODY_25: feet do not count towards min_parts
        int feet = 0;
        for (int k = 19; k < 25; ++k) feet += p.parts[k] > 0;
        counter -= feet;
        if (a.assembly == kAssemblyGpu && feet > 0 && counter <= 4) continue;
      }
      if (counter >= a.min_parts && p.score / T(counter) >= a.min_mean_score) {
        for (int k = 0; k < K; ++k) result.parts.push_back(p.parts[k] - 1);
        result.scores.push_back(p.score / T(K + L));
        if (++kept == a.max_persons) break;
      }
    }
    return kept;
  };
  // The GPU build retries without the feet rule when nobody passes.
  if (run(false) == 0 && a.assembly == kAssemblyGpu && K == 25) run(true);
}

template <typename T>
std::vector<Person<T>> assemble_globally(const GroupArgs<T>& a, int64_t b) {
  const int K = a.K, M = a.M, L = a.L;
  const T* peaks = a.peaks + b * K * M * 3;
  const int64_t* counts = a.counts + b * K;
  auto peak_score = [&](int part, int number) { return peaks[(part * M + number - 1) * 3 + 2]; };
  // (total score used for sorting, PAF score, limb, 1-based A, 1-based B)
  std::vector<std::tuple<T, T, int, int, int>> connections;
  for (int l = 0; l < L; ++l) {
    const int part_a = static_cast<int>(a.limbs[2 * l]);
    const int part_b = static_cast<int>(a.limbs[2 * l + 1]);
    const int na = static_cast<int>(counts[part_a]), nb = static_cast<int>(counts[part_b]);
    const T* s = a.scores + (b * L + l) * M * M;
    for (int i = 0; i < na; ++i) {
      for (int j = 0; j < nb; ++j) {
        const T score = s[i * M + j];
        if (!(score > T(1e-6))) continue;
        const T total = score + T(0.1) * peak_score(part_a, i + 1) + T(0.1) * peak_score(part_b, j + 1);
        connections.emplace_back(total, score, l, i + 1, j + 1);
      }
    }
  }
  std::sort(connections.begin(), connections.end(), std::greater<std::tuple<T, T, int, int, int>>());
  std::vector<Person<T>> people;
  std::vector<int> assigned(static_cast<size_t>(K) * M, -1);
  std::vector<char> removed;
  for (const auto& c : connections) {
    const T paf = std::get<1>(c);
    const int l = std::get<2>(c), i = std::get<3>(c), j = std::get<4>(c);
    const int part_a = static_cast<int>(a.limbs[2 * l]);
    const int part_b = static_cast<int>(a.limbs[2 * l + 1]);
    int& a_assigned = assigned[part_a * M + i - 1];
    int& b_assigned = assigned[part_b * M + j - 1];
    if (a_assigned < 0 && b_assigned < 0) {
      Person<T> p{std::vector<int>(K, 0), 2, peak_score(part_a, i) + peak_score(part_b, j) + paf};
      p.parts[part_a] = i;
      p.parts[part_b] = j;
      a_assigned = b_assigned = static_cast<int>(people.size());
      people.push_back(std::move(p));
      removed.push_back(0);
    } else if ((a_assigned >= 0) != (b_assigned >= 0)) {
      const int owner = a_assigned >= 0 ? a_assigned : b_assigned;
      int& other = a_assigned >= 0 ? b_assigned : a_assigned;
      const int part = a_assigned >= 0 ? part_b : part_a;
      const int number = a_assigned >= 0 ? j : i;
      auto& p = people[owner];
      if (p.parts[part] == 0) {  // otherwise a better-scored peak already holds that part
        p.parts[part] = number;
        p.count++;
        p.score += peak_score(part, number) + paf;
        other = owner;
      }
    } else if (a_assigned == b_assigned) {
      people[a_assigned].score += paf;
    } else {
      const int first = std::min(a_assigned, b_assigned), second = std::max(a_assigned, b_assigned);
      auto& p1 = people[first];
      const auto& p2 = people[second];
      bool disjoint = true;
      for (int k = 0; k < K && disjoint; ++k) disjoint = !(p1.parts[k] > 0 && p2.parts[k] > 0);
      if (disjoint) {
        for (int k = 0; k < K; ++k)
          if (p1.parts[k] == 0) p1.parts[k] = p2.parts[k];
        p1.count += p2.count;
        p1.score += p2.score + paf;
        removed[second] = 1;
        for (auto& e : assigned)
          if (e == second) e = first;
      }
    }
  }
  std::vector<Person<T>> kept;
  kept.reserve(people.size());
  for (size_t p = 0; p < people.size(); ++p)
    if (!removed[p]) kept.push_back(std::move(people[p]));
  return kept;
}

template <typename T>
void group_image(const GroupArgs<T>& a, int64_t b, GroupedImage<T>& result) {
  const int K = a.K, M = a.M, L = a.L;
  if (a.assembly == kAssemblyGpu) {
    filter_people(a, assemble_globally(a, b), result);
    return;
  }
  const T* peaks = a.peaks + b * K * M * 3;
  const int64_t* counts = a.counts + b * K;
  auto peak_score = [&](int part, int number) { return peaks[(part * M + number - 1) * 3 + 2]; };
  std::vector<Person<T>> people;
  auto add_person = [&](int part_a, int ia, int part_b, int ib, int count, T score) {
    Person<T> p{std::vector<int>(K, 0), count, score};
    if (part_a >= 0) p.parts[part_a] = ia;
    if (part_b >= 0) p.parts[part_b] = ib;
    people.push_back(std::move(p));
  };
  std::vector<std::tuple<double, int, int>> candidates;
  std::vector<std::tuple<int, int, double>> chosen;
  for (int l = 0; l < L; ++l) {
    const int part_a = static_cast<int>(a.limbs[2 * l]);
    const int part_b = static_cast<int>(a.limbs[2 * l + 1]);
    const int na = static_cast<int>(counts[part_a]), nb = static_cast<int>(counts[part_b]);
    if (na == 0 || nb == 0) {
      // A part without partner candidates becomes a one-part person (unless already placed).
      const int part = na == 0 ? part_b : part_a;
      const int n = na == 0 ? nb : na;
      for (int i = 1; i <= n; ++i) {
        bool found = false;
        if (a.dedupe_singletons) {
          for (const auto& p : people) {
            if (p.parts[part] == i) {
              found = true;
              break;
            }
          }
        }
        if (!found) add_person(part, i, -1, 0, 1, peak_score(part, i));
      }
      continue;
    }
    const T* s = a.scores + (b * L + l) * M * M;
    candidates.clear();
    for (int i = 0; i < na; ++i)
      for (int j = 0; j < nb; ++j)
        if (s[i * M + j] > T(1e-6)) candidates.emplace_back(double(s[i * M + j]), i + 1, j + 1);
    std::sort(candidates.begin(), candidates.end(), std::greater<std::tuple<double, int, int>>());
    chosen.clear();
    if (a.method == kHungarian) {
      if (!candidates.empty()) {
        const bool transpose = na > nb;
        const int n = transpose ? nb : na, m = transpose ? na : nb;
        std::vector<double> cost(static_cast<size_t>(n) * m, 0.0);
        for (const auto& c : candidates) {
          const int i = std::get<1>(c) - 1, j = std::get<2>(c) - 1;
          cost[transpose ? j * m + i : i * m + j] = -std::get<0>(c);
        }
        const auto match = min_cost_assignment(cost, n, m);
        std::vector<char> taken(static_cast<size_t>(na) * nb, 0);
        for (int r = 0; r < n; ++r) {
          const int i = transpose ? match[r] : r, j = transpose ? r : match[r];
          taken[i * nb + j] = 1;
        }
        // Kept in the greedy order (score descending) so assembly sees the same sequence.
        for (const auto& c : candidates) {
          const int i = std::get<1>(c), j = std::get<2>(c);
          if (taken[(i - 1) * nb + (j - 1)]) chosen.emplace_back(i, j, std::get<0>(c));
        }
      }
    } else {
      const int min_ab = std::min(na, nb);
      std::vector<char> occur_a(na, 0), occur_b(nb, 0);
      int counter = 0;
      for (const auto& c : candidates) {
        const int i = std::get<1>(c), j = std::get<2>(c);
        if (occur_a[i - 1] || occur_b[j - 1]) continue;
        chosen.emplace_back(i, j, std::get<0>(c));
        if (++counter == min_ab) break;
        occur_a[i - 1] = 1;
        occur_b[j - 1] = 1;
      }
    }
    if (chosen.empty()) continue;
    if (l == 0) {
      for (const auto& c : chosen) {
        const int i = std::get<0>(c), j = std::get<1>(c);
        // OpenPose adds the part scores in T and the connection score in double here.
        const T parts = peak_score(part_a, i) + peak_score(part_b, j);
        add_person(part_a, i, part_b, j, 2, T(double(parts) + std::get<2>(c)));
      }
    } else if (a.redundant[l]) {
      for (const auto& c : chosen) {
        const int i = std::get<0>(c), j = std::get<1>(c);
        for (auto& p : people) {
          if (p.parts[part_a] == i && p.parts[part_b] == 0) {
            p.parts[part_b] = j;
          } else if (p.parts[part_b] == j && p.parts[part_a] == 0) {
            p.parts[part_a] = i;
          }
        }
      }
    } else {
      for (const auto& c : chosen) {
        const int i = std::get<0>(c), j = std::get<1>(c);
        const T score = T(std::get<2>(c));
        bool found = false;
        for (auto& p : people) {
          if (p.parts[part_a] == i) {
            p.parts[part_b] = j;
            p.count++;
            p.score += peak_score(part_b, j) + score;
            found = true;
            break;
          }
        }
        if (!found)
          add_person(part_a, i, part_b, j, 2, peak_score(part_a, i) + peak_score(part_b, j) + score);
      }
    }
  }
  filter_people(a, people, result);
}

}  // namespace

template <typename T>
void group_poses_cpu(const GroupArgs<T>& args, std::vector<GroupedImage<T>>& out) {
  out.assign(args.B, GroupedImage<T>{});
  at::parallel_for(0, args.B, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) group_image(args, b, out[b]);
  });
}

template void find_peaks_cpu<float>(const PeakArgs<float>&);
template void find_peaks_cpu<double>(const PeakArgs<double>&);
template void peak_flags_cpu<float>(const PeakArgs<float>&);
template void peak_flags_cpu<double>(const PeakArgs<double>&);
template void peak_write_cpu<float>(const PeakArgs<float>&);
template void peak_write_cpu<double>(const PeakArgs<double>&);
template void paf_scores_cpu<float>(const ScoreArgs<float>&);
template void paf_scores_cpu<double>(const ScoreArgs<double>&);
template void group_poses_cpu<float>(const GroupArgs<float>&, std::vector<GroupedImage<float>>&);
template void group_poses_cpu<double>(const GroupArgs<double>&, std::vector<GroupedImage<double>>&);

}  // namespace paf
}  // namespace pyhpe
