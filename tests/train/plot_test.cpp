#include "foundry/train/plot.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "testing.h"

namespace foundry {
namespace {

namespace fs = std::filesystem;

// ---- a minimal XML reader: elements, attributes, text; checks that tags balance ---------------

struct Element {
  std::string name;
  std::map<std::string, std::string> attrs;
  std::string text;  // character data directly inside
  std::string parent;
};

struct Document {
  std::vector<Element> elements;  // in document order
  std::string root;
  std::string error;  // empty when well formed
  std::vector<const Element*> all(const std::string& name) const {
    std::vector<const Element*> out;
    for (const Element& e : elements)
      if (e.name == name) out.push_back(&e);
    return out;
  }
};

Document parse_xml(const std::string& s) {
  Document d;
  std::vector<size_t> open;  // indices into elements
  size_t pos = 0;
  auto fail = [&](const std::string& why) {
    d.error = why + " at byte " + std::to_string(pos);
    return d;
  };
  while (pos < s.size()) {
    if (s[pos] != '<') {
      const size_t next = s.find('<', pos);
      const std::string text = s.substr(pos, next - pos);
      if (open.empty() && text.find_first_not_of(" \t\r\n") != std::string::npos) return fail("text outside the root");
      if (!open.empty()) d.elements[open.back()].text += text;
      if (text.find('>') != std::string::npos) return fail("stray '>'");
      pos = next == std::string::npos ? s.size() : next;
      continue;
    }
    if (s.compare(pos, 5, "<?xml") == 0) {
      if (pos != 0) return fail("XML declaration not first");
      pos = s.find("?>", pos);
      if (pos == std::string::npos) return fail("unterminated declaration");
      pos += 2;
      continue;
    }
    if (s.compare(pos, 4, "<!--") == 0) {
      pos = s.find("-->", pos);
      if (pos == std::string::npos) return fail("unterminated comment");
      pos += 3;
      continue;
    }
    if (s.compare(pos, 2, "</") == 0) {
      const size_t end = s.find('>', pos);
      if (end == std::string::npos) return fail("unterminated end tag");
      const std::string name = s.substr(pos + 2, end - pos - 2);
      if (open.empty() || d.elements[open.back()].name != name) return fail("unbalanced </" + name + ">");
      open.pop_back();
      pos = end + 1;
      continue;
    }
    // Start tag: name, then name="value" pairs, then > or />.
    Element e;
    size_t p = pos + 1;
    while (p < s.size() && (std::isalnum(static_cast<unsigned char>(s[p])) || s[p] == '-' || s[p] == ':')) ++p;
    e.name = s.substr(pos + 1, p - pos - 1);
    if (e.name.empty()) return fail("empty tag name");
    bool self_closing = false;
    while (true) {
      while (p < s.size() && std::isspace(static_cast<unsigned char>(s[p]))) ++p;
      if (p >= s.size()) return fail("unterminated tag");
      if (s[p] == '>') break;
      if (s.compare(p, 2, "/>") == 0) {
        self_closing = true;
        ++p;
        break;
      }
      const size_t eq = s.find('=', p);
      if (eq == std::string::npos || s[eq + 1] != '"') return fail("attribute without a quoted value");
      const std::string key = s.substr(p, eq - p);
      const size_t close = s.find('"', eq + 2);
      if (close == std::string::npos) return fail("unterminated attribute");
      const std::string value = s.substr(eq + 2, close - eq - 2);
      if (value.find('<') != std::string::npos) return fail("'<' in an attribute");
      if (e.attrs.count(key)) return fail("duplicate attribute " + key);
      e.attrs[key] = value;
      p = close + 1;
    }
    if (open.empty() && !d.root.empty()) return fail("second root element");
    if (open.empty()) d.root = e.name;
    e.parent = open.empty() ? "" : d.elements[open.back()].name;
    d.elements.push_back(e);
    if (!self_closing) open.push_back(d.elements.size() - 1);
    pos = p + 1;
  }
  if (!open.empty()) return fail("unclosed <" + d.elements[open.back()].name + ">");
  if (d.root.empty()) return fail("no root element");
  return d;
}

std::vector<std::pair<double, double>> points_of(const Element& polyline) {
  std::vector<std::pair<double, double>> pts;
  std::istringstream in(polyline.attrs.at("points"));
  for (std::string pair; in >> pair;) {
    const size_t comma = pair.find(',');
    pts.emplace_back(std::stod(pair.substr(0, comma)), std::stod(pair.substr(comma + 1)));
  }
  return pts;
}

const Element* series(const Document& d, const std::string& field) {
  for (const Element* e : d.all("polyline"))
    if (e->attrs.at("class") == "series " + field) return e;
  return nullptr;
}

// A run: `n` train records (steps 10, 20, ...), a validation record every 5th, lr missing on
// the first record and one NaN loss.
std::vector<MetricsRecord> sample_run(int n) {
  std::vector<MetricsRecord> r;
  for (int i = 1; i <= n; ++i) {
    MetricsRecord m{.step = 10 * i};
    m.set("loss", i == 7 ? std::nan("") : 10.0 * std::exp(-0.05 * i));
    if (i > 1) m.set("lr", 3e-4 * std::min(1.0, i / 10.0));
    m.set("tokens_per_s", 12000 + 100 * (i % 3));
    r.push_back(m);
    if (i % 5 == 0) r.push_back(MetricsRecord{.step = 10 * i, .fields = {{"valid_loss", 11.0 * std::exp(-0.05 * i)}}});
  }
  return r;
}

TEST(Plot, SvgIsWellFormedWithThreePanelsAndOnePointPerStep) {
  const std::string svg = render_metrics_svg(sample_run(40), "foundry run: a<b & \"c\"");
  const Document d = parse_xml(svg);
  ASSERT_EQ(d.error, "");
  EXPECT_EQ(d.root, "svg");
  EXPECT_EQ(d.elements.front().attrs.at("xmlns"), "http://www.w3.org/2000/svg");

  std::vector<std::string> titles;
  for (const Element* t : d.all("text"))
    if (t->attrs.count("class") && t->attrs.at("class") == "title") titles.push_back(t->text);
  EXPECT_EQ(titles, (std::vector<std::string>{"Loss", "Learning rate", "Throughput (tokens/s)"}));
  EXPECT_NE(svg.find("foundry run: a&lt;b &amp; &quot;c&quot;"), std::string::npos);  // escaped title

  const Element* loss = series(d, "loss");
  const Element* valid = series(d, "valid_loss");
  const Element* lr = series(d, "lr");
  const Element* tps = series(d, "tokens_per_s");
  ASSERT_TRUE(loss && valid && lr && tps);
  EXPECT_EQ(points_of(*loss).size(), 39u);  // 40 records, one NaN skipped
  EXPECT_EQ(points_of(*valid).size(), 8u);
  EXPECT_EQ(points_of(*lr).size(), 39u);    // missing on the first record
  EXPECT_EQ(points_of(*tps).size(), 40u);

  // Every point lies inside its panel's frame and x grows with the step.
  std::vector<const Element*> frames;
  for (const Element* r : d.all("rect"))
    if (r->attrs.at("fill") == "none") frames.push_back(r);
  ASSERT_EQ(frames.size(), 3u);
  const std::pair<const Element*, const Element*> in_panel[] = {{loss, frames[0]}, {valid, frames[0]}, {lr, frames[1]},
                                                                {tps, frames[2]}};
  for (const auto& [line, frame] : in_panel) {
    const double x0 = std::stod(frame->attrs.at("x")), y0 = std::stod(frame->attrs.at("y"));
    const double x1 = x0 + std::stod(frame->attrs.at("width")), y1 = y0 + std::stod(frame->attrs.at("height"));
    const auto pts = points_of(*line);
    for (size_t i = 0; i < pts.size(); ++i) {
      EXPECT_TRUE(pts[i].first >= x0 && pts[i].first <= x1 && pts[i].second >= y0 && pts[i].second <= y1)
          << line->attrs.at("class") << " point " << i << " (" << pts[i].first << ", " << pts[i].second << ")";
      if (i > 0) {
        EXPECT_GT(pts[i].first, pts[i - 1].first);
      }
    }
  }
  const auto lp = points_of(*loss);
  EXPECT_GT(lp.back().second, lp.front().second);  // loss falls: lower on the page (SVG y points down)
  // The x axis is shared: step 400 (the last) is at the right edge of every panel.
  EXPECT_DOUBLE_EQ(points_of(*tps).back().first, lp.back().first);
  // Tick labels: the learning rate axis carries its factor, throughput uses SI suffixes.
  EXPECT_NE(svg.find("learning rate (\u00d71e-4)"), std::string::npos);
  EXPECT_NE(svg.find(">12.10k<"), std::string::npos);  // tokens/s spans 12000..12200
  EXPECT_NE(svg.find(">400<"), std::string::npos);
}

TEST(Plot, RepeatedStepsKeepTheLastRecordAndEmptySeriesSayNoData) {
  // A resumed run logs steps 2 and 3 again: each step is drawn once, with the later value.
  std::vector<MetricsRecord> r;
  for (int s : {1, 2, 3, 2, 3, 4}) r.push_back(MetricsRecord{.step = s, .fields = {{"loss", s == 1 ? 5.0 : 10.0 - s}}});
  const std::string svg = render_metrics_svg(r, "resumed");
  const Document d = parse_xml(svg);
  ASSERT_EQ(d.error, "");
  ASSERT_NE(series(d, "loss"), nullptr);
  EXPECT_EQ(points_of(*series(d, "loss")).size(), 4u);
  EXPECT_EQ(series(d, "lr"), nullptr);
  EXPECT_EQ(series(d, "valid_loss"), nullptr);
  int no_data = 0;
  for (const Element* t : d.all("text")) no_data += t->text == "no data";
  EXPECT_EQ(no_data, 2);  // learning rate and throughput
  // One record only: a degenerate axis range still gives finite coordinates.
  const Document one = parse_xml(render_metrics_svg({MetricsRecord{.step = 5, .fields = {{"loss", 2.0}}}}, "one"));
  ASSERT_EQ(one.error, "");
  const auto p = points_of(*series(one, "loss"));
  ASSERT_EQ(p.size(), 1u);
  EXPECT_TRUE(std::isfinite(p[0].first) && std::isfinite(p[0].second));
  EXPECT_EQ(svg.find("nan"), std::string::npos);
}

TEST(Plot, TheXmlReaderRejectsBrokenDocuments) {
  EXPECT_EQ(parse_xml("<svg><g></svg>").error.substr(0, 16), "unbalanced </svg");
  EXPECT_EQ(parse_xml("<svg><g>").error.substr(0, 12), "unclosed <g>");
  EXPECT_NE(parse_xml("<svg a=\"1></svg>").error, "");
  EXPECT_EQ(parse_xml("<svg/>").error, "");
}

std::string scratch_run(const std::string& name) {
  const fs::path d = fs::path(::testing::TempDir()) / ("plot_test_" + std::to_string(getpid())) / name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

TEST(Plot, PlotRunWritesTheSvgBesideTheMetrics) {
  const std::string dir = scratch_run("run1");
  {
    MetricsLog log(dir + "/metrics.jsonl");
    for (const MetricsRecord& r : sample_run(12)) log.append(r);
  }
  const PlotResult r = plot_run(dir, "", /*png=*/false);
  EXPECT_EQ(r.records, 14u);
  EXPECT_EQ(r.svg_path, dir + "/metrics.svg");
  EXPECT_EQ(r.png_path, dir + "/metrics.png");
  EXPECT_FALSE(r.png.written);
  std::ifstream f(r.svg_path);
  const std::string svg{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
  EXPECT_EQ(parse_xml(svg).error, "");
  EXPECT_NE(svg.find("foundry run: run1"), std::string::npos);
  // --output, and the metrics file named directly.
  const PlotResult r2 = plot_run(dir + "/metrics.jsonl", dir + "/curves.svg", false);
  EXPECT_TRUE(fs::exists(dir + "/curves.svg"));
  EXPECT_EQ(r2.png_path, dir + "/curves.png");
}

TEST(Plot, BadInputIsAClearError) {
  const std::string dir = scratch_run("bad");
  EXPECT_ERROR_MENTIONS(plot_run(dir + "/nope", "", false), "neither a run directory nor a metrics file", "/nope");
  EXPECT_ERROR_MENTIONS(plot_run(dir, "", false), "metrics.jsonl", "no such file");
  std::ofstream(dir + "/metrics.jsonl") << "\n";
  EXPECT_ERROR_MENTIONS(plot_run(dir, "", false), "holds no records");
  std::ofstream(dir + "/metrics.jsonl") << "{\"step\": 1, \"loss\": 2}\n{\"step\": 2, \"loss\": }\n";
  EXPECT_ERROR_MENTIONS(plot_run(dir, "", false), "metrics.jsonl:2: malformed JSON");
  std::ofstream(dir + "/metrics.jsonl") << "{\"step\": 1, \"loss\": 2}\n";
  EXPECT_ERROR_MENTIONS(plot_run(dir, dir + "/out.png", false), "must end in .svg");
  EXPECT_ERROR_MENTIONS(plot_run(dir, dir + "/missing_dir/out.svg", false), "cannot write", "missing_dir/out.svg");
  EXPECT_ERROR_MENTIONS(render_metrics_svg({}, "x"), "no metrics records");
}

// ---- MoE runs: the curves and the expert-load heatmap -----------------------------------------

// sample_run(n) plus, on each train record, the MoE curves and moe_load.L.E for `layers` x
// `experts` with load(L, E, i) at the i-th record (fields appended directly: set() is linear).
template <class F>
std::vector<MetricsRecord> moe_run(int n, const std::vector<int>& layers, int experts, F load) {
  std::vector<MetricsRecord> r = sample_run(n);
  int i = 0;
  for (MetricsRecord& m : r) {
    if (!m.get("loss")) continue;  // validation records carry no MoE fields
    ++i;
    m.set("moe_aux_loss", 0.01 + 0.01 / i).set("moe_z_loss", 1e-3).set("moe_max_load", 1 + 2.0 / i);
    m.set("moe_dropped_frac", 0.05 / i);
    for (int l : layers)
      for (int e = 0; e < experts; ++e) m.fields.emplace_back(fmt::format("moe_load.{}.{}", l, e), load(l, e, i));
  }
  return r;
}

std::vector<std::string> texts_of_class(const Document& d, const std::string& cls) {
  std::vector<std::string> out;
  for (const Element* t : d.all("text"))
    if (t->attrs.count("class") && t->attrs.at("class") == cls) out.push_back(t->text);
  return out;
}

std::vector<const Element*> rects_of_class(const Document& d, const std::string& cls) {
  std::vector<const Element*> out;
  for (const Element* r : d.all("rect"))
    if (r->attrs.count("class") && r->attrs.at("class") == cls) out.push_back(r);
  return out;
}

double attr(const Element* e, const std::string& key) { return std::stod(e->attrs.at(key)); }

// The cells as a grid: rows by y, columns by x.
std::vector<std::vector<const Element*>> cell_grid(const Document& d) {
  std::map<double, std::map<double, const Element*>> by_y;
  for (const Element* c : rects_of_class(d, "cell")) by_y[attr(c, "y")][attr(c, "x")] = c;
  std::vector<std::vector<const Element*>> grid;
  for (const auto& [y, row] : by_y) {
    grid.emplace_back();
    for (const auto& [x, c] : row) grid.back().push_back(c);
  }
  return grid;
}

TEST(Plot, MoeRunsGetLossPanelsAndAnExpertLoadHeatmap) {
  // Layers 0 and 2, 4 experts, 12 steps (10..120). Layer 0 is balanced (load 1 everywhere);
  // layer 2 has an unused expert 0 and an overloaded expert 3 (loads 0, 1, 1, 2: mean 1).
  const auto load = [](int l, int e, int) { return l == 0 ? 1.0 : e == 0 ? 0.0 : e == 3 ? 2.0 : 1.0; };
  const std::string svg = render_metrics_svg(moe_run(12, {0, 2}, 4, load), "moe");
  const Document d = parse_xml(svg);
  ASSERT_EQ(d.error, "");
  EXPECT_EQ(texts_of_class(d, "title"),
            (std::vector<std::string>{"Loss", "Learning rate", "Throughput (tokens/s)", "MoE losses",
                                      "Expert load balance", "Expert load (tokens / mean)"}));
  for (const char* f : {"moe_aux_loss", "moe_z_loss", "moe_max_load", "moe_dropped_frac"}) {
    ASSERT_NE(series(d, f), nullptr) << f;
    EXPECT_EQ(points_of(*series(d, f)).size(), 12u) << f;
  }
  EXPECT_EQ(texts_of_class(d, "layer-label"), (std::vector<std::string>{"layer 0", "layer 2"}));
  int separators = 0;
  for (const Element* l : d.all("line")) separators += l->attrs.count("class") && l->attrs.at("class") == "layer-sep";
  EXPECT_EQ(separators, 1);

  // One cell per (layer, expert) and step, filling the heatmap's frame without gaps.
  ASSERT_EQ(rects_of_class(d, "cell").size(), 8u * 12u);
  const auto grid = cell_grid(d);
  ASSERT_EQ(grid.size(), 8u);
  std::vector<const Element*> frames;
  for (const Element* r : d.all("rect"))
    if (r->attrs.at("fill") == "none") frames.push_back(r);
  ASSERT_EQ(frames.size(), 6u);
  const Element* frame = frames.back();
  for (const auto& row : grid) {
    ASSERT_EQ(row.size(), 12u);
    EXPECT_NEAR(attr(row.front(), "x"), attr(frame, "x"), 0.011);
    EXPECT_NEAR(attr(row.back(), "x") + attr(row.back(), "width"), attr(frame, "x") + attr(frame, "width"), 0.011);
    for (size_t c = 1; c < row.size(); ++c)
      EXPECT_NEAR(attr(row[c], "x"), attr(row[c - 1], "x") + attr(row[c - 1], "width"), 0.011);
  }
  EXPECT_NEAR(attr(grid.front()[0], "y"), attr(frame, "y"), 0.011);
  EXPECT_NEAR(attr(grid.back()[0], "y") + attr(grid.back()[0], "height"), attr(frame, "y") + attr(frame, "height"),
              0.011);
  // The step axis is shared: a cell is centred on its step (step 60, the 6th, in every panel).
  const double step60 = points_of(*series(d, "loss"))[5].first;
  EXPECT_NEAR(attr(grid[0][5], "x") + attr(grid[0][5], "width") / 2, step60, 0.011);
  // Colours: balanced = white, unused = blue, twice the mean = red.
  for (size_t r = 0; r < 4; ++r)
    for (const Element* c : grid[r]) EXPECT_EQ(c->attrs.at("fill"), "#ffffff");
  EXPECT_EQ(grid[4][0]->attrs.at("fill"), "#2166ac");
  EXPECT_EQ(grid[5][7]->attrs.at("fill"), "#ffffff");
  EXPECT_EQ(grid[7][11]->attrs.at("fill"), "#b2182b");

  // The colour bar: a gradient through the map's stops, ticks 0 .. >=2, a caption.
  ASSERT_EQ(rects_of_class(d, "colorbar").size(), 1u);
  EXPECT_EQ(rects_of_class(d, "colorbar")[0]->attrs.at("fill"), "url(#moe-load-cmap)");
  std::vector<std::string> stops;
  for (const Element* s : d.all("stop")) stops.push_back(s->attrs.at("offset") + " " + s->attrs.at("stop-color"));
  EXPECT_EQ(stops, (std::vector<std::string>{"0 #2166ac", "0.25 #92c5de", "0.5 #ffffff", "0.75 #f4a582",
                                             "1 #b2182b"}));
  EXPECT_EQ(texts_of_class(d, "colorbar-tick"), (std::vector<std::string>{"0", "0.5", "1", "1.5", "\u22652"}));
  ASSERT_EQ(texts_of_class(d, "caption").size(), 1u);
  EXPECT_EQ(texts_of_class(d, "caption")[0],
            "8 rows: one per expert, by layer then expert; 12 columns: one per logged step");
  // The page is tall enough for every panel.
  EXPECT_GE(std::stod(d.elements.front().attrs.at("height")), attr(frame, "y") + attr(frame, "height") + 100);
}

TEST(Plot, ManyStepsAndExpertsAreBinnedAndTheHeatmapStaysBounded) {
  // 1000 steps, 1 layer x 2 experts: 400 columns of 2 or 3 steps. Expert 0 alternates 0 and 2, so
  // a column of steps 1 and 2 averages to 1 (white).
  const auto alternating = [](int, int e, int i) { return e == 1 ? 1.0 : (i % 2 == 0 ? 2.0 : 0.0); };
  std::string svg = render_metrics_svg(moe_run(1000, {1}, 2, alternating), "long");
  Document d = parse_xml(svg);
  ASSERT_EQ(d.error, "");
  auto grid = cell_grid(d);
  ASSERT_EQ(grid.size(), 2u);
  ASSERT_EQ(grid[0].size(), 400u);
  EXPECT_EQ(grid[0][0]->attrs.at("fill"), "#ffffff");
  EXPECT_EQ(texts_of_class(d, "caption")[0],
            "2 rows: one per expert, by layer then expert; 400 columns: 1000 logged steps, up to 3 averaged per column");

  // 40 layers x 64 experts, 60 steps: 4 experts per row (640 rows), the panel at most 1200 px tall.
  std::vector<int> layers;
  for (int l = 0; l < 40; ++l) layers.push_back(l);
  svg = render_metrics_svg(moe_run(60, layers, 64, [](int, int e, int) { return e % 4 == 0 ? 4.0 : 0.0; }), "wide");
  d = parse_xml(svg);
  ASSERT_EQ(d.error, "");
  grid = cell_grid(d);
  ASSERT_EQ(grid.size(), 640u);
  EXPECT_EQ(grid[0].size(), 60u);
  EXPECT_EQ(grid[0][0]->attrs.at("fill"), "#ffffff");  // (4 + 0 + 0 + 0) / 4 = 1
  EXPECT_GE(attr(grid[0][0], "height"), 1.0);
  EXPECT_EQ(texts_of_class(d, "caption")[0],
            "640 rows: 4 experts averaged per row (too many to draw one each); 60 columns: one per logged step");
  EXPECT_EQ(texts_of_class(d, "layer-label").size(), 40u);  // 16 rows of 1.56 px each: 25 px apart
  const double heat_top = attr(rects_of_class(d, "missing")[0], "y") - 40;
  EXPECT_LE(std::stod(d.elements.front().attrs.at("height")) - heat_top, 1200.0);
  EXPECT_LT(svg.size(), 6u << 20);
}

TEST(Plot, RunsWithoutExpertLoadDrawNoHeatmap) {
  // No MoE fields, or only malformed moe_load names: the same document, three panels.
  std::vector<MetricsRecord> r = sample_run(20);
  const std::string plain = render_metrics_svg(r, "dense");
  for (MetricsRecord& m : r) m.fields.emplace_back("moe_load.x.y", 1.0);
  EXPECT_EQ(render_metrics_svg(r, "dense"), plain);
  const Document d = parse_xml(plain);
  EXPECT_EQ(texts_of_class(d, "title").size(), 3u);
  EXPECT_TRUE(rects_of_class(d, "cell").empty());
  EXPECT_EQ(d.elements.front().attrs.at("height"), "944");
  // MoE curves without per-expert loads: the two curve panels, no heatmap.
  r = sample_run(20);
  for (MetricsRecord& m : r) m.set("moe_aux_loss", 0.01);
  const Document curves = parse_xml(render_metrics_svg(r, "aux only"));
  EXPECT_EQ(texts_of_class(curves, "title").size(), 5u);
  EXPECT_TRUE(rects_of_class(curves, "cell").empty());
}

TEST(Plot, PlotRunDrawsTheHeatmapFromMetricsJsonl) {
  const std::string dir = scratch_run("moe");
  {
    MetricsLog log(dir + "/metrics.jsonl");
    std::vector<MetricsRecord> r = moe_run(8, {1, 3}, 4, [](int, int e, int) { return 0.5 * e; });
    r[2].set("moe_load.3.2", std::nan(""));  // written as null: its cell is left out
    for (const MetricsRecord& m : r) log.append(m);
  }
  const PlotResult r = plot_run(dir, "", /*png=*/false);
  std::ifstream f(r.svg_path);
  const Document d = parse_xml(std::string{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()});
  ASSERT_EQ(d.error, "");
  EXPECT_EQ(rects_of_class(d, "cell").size(), 8u * 8u - 1u);
  EXPECT_EQ(texts_of_class(d, "layer-label"), (std::vector<std::string>{"layer 1", "layer 3"}));
  const auto grid = cell_grid(d);
  ASSERT_EQ(grid.size(), 8u);
  EXPECT_EQ(grid[1][0]->attrs.at("fill"), "#92c5de");  // load 0.5
  EXPECT_EQ(grid[3][0]->attrs.at("fill"), "#f4a582");  // load 1.5
}

TEST(Plot, PngConversionReportsAMissingConverter) {
  const std::string dir = scratch_run("png");
  const char* old = std::getenv("PATH");
  const std::string saved = old ? old : "";
  setenv("PATH", (dir + "/empty").c_str(), 1);
  EXPECT_EQ(find_on_path("rsvg-convert"), "");
  const PngResult r = svg_to_png(dir + "/a.svg", dir + "/a.png");
  setenv("PATH", saved.c_str(), 1);
  EXPECT_FALSE(r.written);
  EXPECT_EQ(r.note, "neither rsvg-convert nor convert is on PATH");
  EXPECT_FALSE(fs::exists(dir + "/a.png"));
  EXPECT_NE(find_on_path("sh"), "");
}


// ---- comparing runs ---------------------------------------------------------------------------

const Element* run_series(const Document& d, const std::string& field, int run) {
  return series(d, fmt::format("{} run-{}", field, run));
}

// The legend texts of the panel titled `title` (legends follow their panel's title).
std::vector<std::string> legend_of(const Document& d, const std::string& title) {
  std::vector<std::string> out;
  bool in = false;
  for (const Element* t : d.all("text")) {
    const std::string cls = t->attrs.count("class") ? t->attrs.at("class") : "";
    if (cls == "title") in = t->text == title;
    if (in && cls == "legend") out.push_back(t->text);
  }
  return out;
}

// A continuation of sample_run: steps 200, 210, ..., 600 with a lower loss, no lr on its records.
std::vector<MetricsRecord> continued_run() {
  std::vector<MetricsRecord> r;
  for (int s = 200; s <= 600; s += 10) {
    MetricsRecord m{.step = s};
    m.set("loss", 3.0 - s / 1000.0).set("tokens_per_s", 9000);
    if (s >= 300) m.set("lr", 1e-4);
    r.push_back(m);
  }
  return r;
}

TEST(PlotCompare, OneSeriesPerRunColouredPerRunWithALegend) {
  const std::vector<RunMetrics> runs = {{"dense", sample_run(40)}, {"moe <upcycled>", continued_run()}};
  const std::string svg = render_comparison_svg(runs, "foundry runs: dense vs moe");
  const Document d = parse_xml(svg);
  ASSERT_EQ(d.error, "");
  EXPECT_EQ(texts_of_class(d, "title"), (std::vector<std::string>{"Loss", "Learning rate", "Throughput (tokens/s)"}));
  // One train-loss polyline per run (no plain "series loss"), valid_loss only for the run with it.
  EXPECT_EQ(series(d, "loss"), nullptr);
  ASSERT_TRUE(run_series(d, "loss", 0) && run_series(d, "loss", 1));
  EXPECT_EQ(points_of(*run_series(d, "loss", 0)).size(), 39u);  // steps 10..400, one NaN
  EXPECT_EQ(points_of(*run_series(d, "loss", 1)).size(), 41u);  // steps 200..600
  ASSERT_NE(run_series(d, "valid_loss", 0), nullptr);
  EXPECT_EQ(run_series(d, "valid_loss", 1), nullptr);
  EXPECT_EQ(points_of(*run_series(d, "valid_loss", 0)).size(), 8u);
  EXPECT_EQ(run_series(d, "valid_loss", 0)->attrs.at("stroke-dasharray"), "6 4");
  EXPECT_EQ(run_series(d, "loss", 0)->attrs.count("stroke-dasharray"), 0u);
  EXPECT_EQ(points_of(*run_series(d, "lr", 0)).size(), 39u);
  EXPECT_EQ(points_of(*run_series(d, "lr", 1)).size(), 31u);  // steps 300..600
  EXPECT_EQ(points_of(*run_series(d, "tokens_per_s", 1)).size(), 41u);
  // Colours per run, the same in every panel.
  for (const char* f : {"loss", "lr", "tokens_per_s"}) {
    EXPECT_EQ(run_series(d, f, 0)->attrs.at("stroke"), "#1f77b4") << f;
    EXPECT_EQ(run_series(d, f, 1)->attrs.at("stroke"), "#ff7f0e") << f;
  }
  EXPECT_EQ(run_series(d, "valid_loss", 0)->attrs.at("stroke"), "#1f77b4");
  // Legends name the runs (escaped in the file).
  EXPECT_EQ(legend_of(d, "Loss"), (std::vector<std::string>{"dense", "moe &lt;upcycled&gt;", "dense (valid)"}));
  EXPECT_EQ(legend_of(d, "Learning rate"), (std::vector<std::string>{"dense", "moe &lt;upcycled&gt;"}));
  EXPECT_EQ(legend_of(d, "Throughput (tokens/s)"), (std::vector<std::string>{"dense", "moe &lt;upcycled&gt;"}));
  // The step axis is shared: step 200 of both runs is at the same x, step 10 at the left, 600 at the right.
  const auto a = points_of(*run_series(d, "loss", 0)), b = points_of(*run_series(d, "loss", 1));
  EXPECT_DOUBLE_EQ(a[18].first, b[0].first);  // step 200 (step 70 is NaN: index 18)
  std::vector<const Element*> frames;
  for (const Element* r : d.all("rect"))
    if (r->attrs.at("fill") == "none") frames.push_back(r);
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_NEAR(a.front().first, attr(frames[0], "x"), 0.011);
  EXPECT_NEAR(b.back().first, attr(frames[0], "x") + attr(frames[0], "width"), 0.011);
  EXPECT_NE(svg.find("2 runs, 89 records, steps 10\u2013600"), std::string::npos);
}

TEST(PlotCompare, FromStepDropsEarlierPoints) {
  const std::vector<RunMetrics> runs = {{"dense", sample_run(40)}, {"moe", continued_run()}};
  const Document d = parse_xml(render_comparison_svg(runs, "cmp", /*from_step=*/300));
  ASSERT_EQ(d.error, "");
  const auto a = points_of(*run_series(d, "loss", 0)), b = points_of(*run_series(d, "loss", 1));
  EXPECT_EQ(a.size(), 11u);  // 300..400
  EXPECT_EQ(b.size(), 31u);  // 300..600
  EXPECT_EQ(points_of(*run_series(d, "valid_loss", 0)).size(), 3u);  // 300, 350, 400
  EXPECT_DOUBLE_EQ(a.front().first, b.front().first);  // both start at step 300, the left edge
  std::vector<const Element*> frames;
  for (const Element* r : d.all("rect"))
    if (r->attrs.at("fill") == "none") frames.push_back(r);
  EXPECT_NEAR(a.front().first, attr(frames[0], "x"), 0.011);
  // A run left without records names itself and its steps.
  EXPECT_ERROR_MENTIONS(render_comparison_svg(runs, "cmp", 500), "run 'dense'", "--from-step 500",
                        "10\u2013400");
  EXPECT_ERROR_MENTIONS(render_comparison_svg({}, "cmp"), "no runs");
}

TEST(PlotCompare, PlotRunsWritesOneSvgFromRunDirectories) {
  const std::string dense = scratch_run("dense"), moe = scratch_run("moe_cont");
  {
    MetricsLog a(dense + "/metrics.jsonl"), b(moe + "/metrics.jsonl");
    for (const MetricsRecord& r : sample_run(40)) a.append(r);
    for (const MetricsRecord& r : continued_run()) b.append(r);
  }
  const std::string out = (fs::path(dense).parent_path() / "cmp.svg").string();
  PlotRunsResult r = plot_runs({dense, moe + "/metrics.jsonl"}, {}, out, /*png=*/false);
  EXPECT_EQ(r.labels, (std::vector<std::string>{"dense", "moe_cont"}));  // directory names
  EXPECT_EQ(r.records, (std::vector<size_t>{48u, 41u}));
  EXPECT_EQ(r.svg_path, out);
  EXPECT_EQ(r.png_path, (fs::path(dense).parent_path() / "cmp.png").string());
  EXPECT_FALSE(r.png.written);
  std::ifstream f(out);
  std::string svg{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
  Document d = parse_xml(svg);
  ASSERT_EQ(d.error, "");
  EXPECT_EQ(legend_of(d, "Learning rate"), (std::vector<std::string>{"dense", "moe_cont"}));
  EXPECT_NE(svg.find("foundry runs: dense vs moe_cont"), std::string::npos);
  // --label and --from-step.
  r = plot_runs({dense, moe}, {"dense 1B", "MoE 8x1B"}, out, false, 250);
  std::ifstream f2(out);
  d = parse_xml(std::string{std::istreambuf_iterator<char>(f2), std::istreambuf_iterator<char>()});
  ASSERT_EQ(d.error, "");
  EXPECT_EQ(legend_of(d, "Loss"), (std::vector<std::string>{"dense 1B", "MoE 8x1B", "dense 1B (valid)"}));
  EXPECT_EQ(points_of(*run_series(d, "loss", 0)).size(), 16u);  // 250..400
  EXPECT_EQ(points_of(*run_series(d, "loss", 1)).size(), 36u);  // 250..600

  // Errors name what is wrong.
  EXPECT_ERROR_MENTIONS(plot_runs({dense, moe + "/missing_run"}, {}, out, false), "neither a run directory",
                        "missing_run");
  EXPECT_ERROR_MENTIONS(plot_runs({dense, moe}, {"one"}, out, false), "1 --label given for 2 runs");
  EXPECT_ERROR_MENTIONS(plot_runs({dense, moe}, {}, "", false), "comparing 2 runs needs --output");
  EXPECT_ERROR_MENTIONS(plot_runs({dense, moe}, {}, dense + "/cmp.png", false), "must end in .svg");
  EXPECT_ERROR_MENTIONS(plot_runs({dense}, {"a"}, "", false), "--label", "two or more runs");
  EXPECT_ERROR_MENTIONS(plot_runs({dense}, {}, "", false, 1000), "no records at --from-step 1000", "10\u2013400");
}

// FNV-1a (64 bit) of a file's bytes.
uint64_t fnv1a_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  uint64_t h = 0xcbf29ce484222325ull;
  for (std::istreambuf_iterator<char> it(f), end; it != end; ++it) {
    h ^= static_cast<unsigned char>(*it);
    h *= 0x100000001b3ull;
  }
  return h;
}

// Runs with exactly representable metrics (as tools write them to metrics.jsonl).
std::vector<MetricsRecord> golden_run(bool moe) {
  std::vector<MetricsRecord> r;
  for (int i = 1; i <= 30; ++i) {
    MetricsRecord m{.step = 10 * i};
    m.set("loss", 8.0 - 0.125 * i).set("lr", i <= 5 ? 1e-4 * i : 5e-4).set("tokens_per_s", 10000 + 250 * (i % 4));
    if (moe) {
      m.set("moe_aux_loss", 0.01 + 0.001 * (i % 3)).set("moe_z_loss", 0.002).set("moe_max_load", 1.5);
      m.set("moe_dropped_frac", 0.0625 * (i % 2));
      for (int e = 0; e < 4; ++e) m.fields.emplace_back(fmt::format("moe_load.0.{}", e), 0.5 * e);
      for (int e = 0; e < 4; ++e) m.fields.emplace_back(fmt::format("moe_load.1.{}", e), 1.0);
    }
    r.push_back(m);
    if (i % 10 == 0) r.push_back(MetricsRecord{.step = 10 * i, .fields = {{"valid_loss", 8.5 - 0.125 * i}}});
  }
  return r;
}

TEST(PlotCompare, OneRunRendersAsBefore) {
  // The bytes `foundry plot` wrote for these runs before comparisons existed (FNV-1a 64).
  for (const auto& [name, moe, hash] : {std::tuple{"golden_dense", false, 0x2b7446fb07790c88ull},
                                        std::tuple{"golden_moe", true, 0x0b9054f3f86a368aull}}) {
    const std::string dir = scratch_run(name);
    {
      MetricsLog log(dir + "/metrics.jsonl");
      for (const MetricsRecord& r : golden_run(moe)) log.append(r);
    }
    const PlotResult one = plot_run(dir, "", false);
    EXPECT_EQ(fnv1a_file(one.svg_path), hash) << name;
    // plot_runs with one run is plot_run.
    const PlotRunsResult via = plot_runs({dir}, {}, dir + "/via.svg", false);
    EXPECT_EQ(fnv1a_file(via.svg_path), hash) << name;
    EXPECT_EQ(via.records, (std::vector<size_t>{33u}));
  }
}

}  // namespace
}  // namespace foundry
