#include "foundry/train/plot.h"

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

}  // namespace
}  // namespace foundry
