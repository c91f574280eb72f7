// osc_packet: every size a datagram claims is checked before liblo sees it;
// bundles, nesting limits, the bounded queue; random and mutated datagrams.
#include "control/osc_packet.hpp"

#include <gtest/gtest.h>

#include <random>

#include "control/dispatch.hpp"
#include "tests/control/fixture.hpp"

namespace rackd::control {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes raw(const char* s, std::size_t n) { return Bytes(reinterpret_cast<const uint8_t*>(s), reinterpret_cast<const uint8_t*>(s) + n); }

bool valid(const Bytes& b, std::string* why_out = nullptr) {
  std::string why;
  const bool ok = validate_packet(b.data(), b.size(), why);
  if (why_out) *why_out = why;
  if (!ok) {
    EXPECT_FALSE(why.empty());
  }
  return ok;
}

void append32(Bytes& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(v >> s));
}

void append64(Bytes& b, uint64_t v) {
  append32(b, static_cast<uint32_t>(v >> 32));
  append32(b, static_cast<uint32_t>(v));
}

Bytes bundle(uint64_t tt, const std::vector<Bytes>& elements) {
  Bytes b = raw("#bundle\0", 8);
  append64(b, tt);
  for (const auto& e : elements) {
    append32(b, static_cast<uint32_t>(e.size()));
    b.insert(b.end(), e.begin(), e.end());
  }
  return b;
}

Bytes msg(const std::string& address, std::vector<OscArg> args) { return encode_message(OscMessage{address, std::move(args)}); }

TEST(OscPacket, TheEightByteBlobDatagramIsRefusedBeforeLiblo) {
  const Bytes b = {0x23, 0x66, 0x00, 0x00, 0x2c, 0x62, 0x80, 0x00};
  std::string why;
  EXPECT_FALSE(valid(b, &why));
  std::vector<TimedMessage> out;
  EXPECT_FALSE(unpack_packet(b.data(), b.size(), out, why));
  EXPECT_TRUE(out.empty());
  // The same bytes behind a proper address: the blob has no room for its length.
  const Bytes c = raw("/f\0\0,b\0\0", 8);
  EXPECT_FALSE(valid(c, &why));
  EXPECT_NE(why.find("blob"), std::string::npos) << why;
}

TEST(OscPacket, BlobLengthsThatDoNotFitAreRefused) {
  for (uint32_t len : {0x80000000u, 0xffffffffu, 0x7fffffffu, 5u, 8u}) {
    Bytes b = raw("/f\0\0,b\0\0", 8);
    append32(b, len);
    append32(b, 0);  // 4 bytes of data
    std::string why;
    EXPECT_FALSE(valid(b, &why)) << len;
    EXPECT_NE(why.find("blob length"), std::string::npos) << why;
  }
  Bytes ok = raw("/f\0\0,b\0\0", 8);
  append32(ok, 3);
  append32(ok, 0x41424300);
  EXPECT_TRUE(valid(ok));
  OscMessage m;
  std::string why;
  ASSERT_TRUE(decode_message(ok.data(), ok.size(), m, why)) << why;
  EXPECT_EQ(m.args[0].tag, 'b');
  EXPECT_EQ(m.args[0].s, "ABC");
}

TEST(OscPacket, TruncatedStringsAndBadAlignmentAreRefused) {
  std::string why;
  EXPECT_FALSE(valid(raw("/abc", 4), &why));                      // address not terminated
  EXPECT_FALSE(valid(raw("/abc\0\0\0\0,ss\0", 12), &why));         // string args missing
  EXPECT_FALSE(valid(raw("/a\0\0,s\0\0abcd", 12), &why));          // string arg not terminated
  EXPECT_FALSE(valid(raw("/a\0\0,i\0\0\0\0\0", 11), &why));        // not a multiple of 4
  EXPECT_FALSE(valid(raw("/a\0\0,i\0\0\0\0", 10), &why));
  EXPECT_FALSE(valid(raw("/a\0\0,i\0\0", 8), &why));               // int32 missing
  EXPECT_FALSE(valid(raw("/a\0\0,d\0\0\0\0\0\0", 12), &why));      // double cut short
  EXPECT_FALSE(valid(raw("/a\0\0,", 5), &why));
  EXPECT_FALSE(valid(raw("/a\0\0", 4), &why));                     // no type tags
  EXPECT_FALSE(valid(raw("/a\0X,\0\0\0", 8), &why));               // padding not zero
  EXPECT_FALSE(valid(raw("/a\0\0,i\0\0\0\0\0\1\0\0\0\0", 16), &why));  // trailing bytes
  EXPECT_FALSE(valid(raw("/a\0\0,x\0\0", 8), &why));               // unknown tag
  EXPECT_FALSE(valid(raw("/a\0\0,[]\0", 8), &why));                // arrays
  EXPECT_FALSE(valid(raw("a\0\0\0,\0\0\0", 8), &why));             // address without '/'
  EXPECT_FALSE(valid(raw("/a b\0\0\0\0,\0\0\0", 12), &why));       // space in address
  EXPECT_FALSE(valid(Bytes{}, &why));
  EXPECT_TRUE(valid(raw("/a\0\0,\0\0\0", 8)));
  EXPECT_TRUE(valid(raw("/a\0\0,i\0\0\0\0\0\1", 12)));
}

TEST(OscPacket, OversizedPacketsAndTooManyArgumentsAreRefused) {
  Bytes big = msg("/a", {OscArg::string(std::string(kMaxPacketBytes, 'x'))});
  std::string why;
  EXPECT_FALSE(valid(big, &why));
  std::vector<OscArg> many(kMaxArgs + 1, OscArg::int32(1));
  EXPECT_FALSE(valid(msg("/a", many), &why));
  std::vector<OscArg> enough(kMaxArgs, OscArg::int32(1));
  EXPECT_TRUE(valid(msg("/a", enough)));
}

TEST(OscPacket, EncodeDecodeRoundTripsEveryType) {
  OscMessage m{"/x/y", {OscArg::int32(-5), OscArg::int64(1ll << 40), OscArg::float32(0.5f), OscArg::float64(0.1),
                        OscArg::string("hello"), OscArg::boolean(true), OscArg::boolean(false)}};
  OscArg nil;
  m.args.push_back(nil);
  OscArg blob;
  blob.tag = 'b';
  blob.s = std::string("\0\1\2", 3);
  m.args.push_back(blob);
  const Bytes b = encode_message(m);
  OscMessage d;
  std::string why;
  ASSERT_TRUE(decode_message(b.data(), b.size(), d, why)) << why;
  EXPECT_EQ(d.address, "/x/y");
  EXPECT_EQ(d.types(), "ihfdsTFNb");
  EXPECT_EQ(d.args[0].i, -5);
  EXPECT_EQ(d.args[1].i, 1ll << 40);
  EXPECT_EQ(d.args[2].d, 0.5);
  EXPECT_EQ(d.args[3].d, 0.1);
  EXPECT_EQ(d.args[4].s, "hello");
  EXPECT_EQ(d.args[8].s, std::string("\0\1\2", 3));
}

TEST(OscPacket, BundlesUnpackInOrderWithTheirTimetags) {
  const Bytes a = msg("/a", {OscArg::int32(1)});
  const Bytes b = msg("/b", {});
  const uint64_t later = timetag_add(timetag_now(), 5.0);
  const Bytes p = bundle(kImmediate, {a, bundle(later, {b}), a});
  std::vector<TimedMessage> out;
  std::string why;
  ASSERT_TRUE(unpack_packet(p.data(), p.size(), out, why)) << why;
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].message.address, "/a");
  EXPECT_EQ(out[0].timetag, kImmediate);
  EXPECT_EQ(out[1].message.address, "/b");
  EXPECT_EQ(out[1].timetag, later);
  // An inner bundle earlier than its outer one (or "immediately") is raised.
  const Bytes q = bundle(later, {bundle(kImmediate, {b}), bundle(100, {a})});
  out.clear();
  ASSERT_TRUE(unpack_packet(q.data(), q.size(), out, why)) << why;
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].timetag, later);
  EXPECT_EQ(out[1].timetag, later);
  // An empty bundle is valid and carries nothing.
  const Bytes e = bundle(kImmediate, {});
  out.clear();
  EXPECT_TRUE(unpack_packet(e.data(), e.size(), out, why));
  EXPECT_TRUE(out.empty());
}

TEST(OscPacket, NestingDepthIsBounded) {
  Bytes p = msg("/a", {});
  for (int d = 0; d < kMaxBundleDepth; ++d) p = bundle(kImmediate, {p});
  EXPECT_TRUE(valid(p));
  p = bundle(kImmediate, {p});
  std::string why;
  EXPECT_FALSE(valid(p, &why));
  EXPECT_NE(why.find("nested"), std::string::npos) << why;
}

TEST(OscPacket, BundleElementSizesAreChecked) {
  const Bytes a = msg("/a", {OscArg::int32(1)});
  Bytes p = bundle(kImmediate, {a});
  std::string why;
  for (uint32_t len : {0u, 3u, 0xfffffff0u, static_cast<uint32_t>(a.size() + 4), 0x80000000u}) {
    Bytes q = p;
    q[16] = static_cast<uint8_t>(len >> 24);
    q[17] = static_cast<uint8_t>(len >> 16);
    q[18] = static_cast<uint8_t>(len >> 8);
    q[19] = static_cast<uint8_t>(len);
    EXPECT_FALSE(valid(q, &why)) << len;
  }
  Bytes cut(p.begin(), p.end() - 4);
  EXPECT_FALSE(valid(cut, &why));
  Bytes size_only = bundle(kImmediate, {});
  size_only.push_back(0);
  size_only.push_back(0);
  size_only.push_back(0);
  size_only.push_back(8);
  EXPECT_FALSE(valid(size_only, &why));
  EXPECT_FALSE(valid(raw("#bundle\0\0\0\0\0", 12), &why));           // no timetag
  EXPECT_FALSE(valid(raw("#bundlX\0\0\0\0\0\0\0\0\1", 16), &why));
  // One bad message anywhere refuses the whole packet.
  EXPECT_FALSE(valid(bundle(kImmediate, {a, raw("/f\0\0,b\0\0", 8)}), &why));
  std::vector<Bytes> many(kMaxBundleMessages + 1, msg("/a", {}));
  EXPECT_FALSE(valid(bundle(kImmediate, many), &why));
}

TEST(OscPacket, BundleQueueIsBoundedAndReleasesInTimeOrder) {
  BundleQueue q(3);
  auto tm = [](uint64_t tt, const char* a) {
    TimedMessage m;
    m.timetag = tt;
    m.message.address = a;
    return m;
  };
  EXPECT_TRUE(q.push(tm(30, "/c")));
  EXPECT_TRUE(q.push(tm(10, "/a")));
  EXPECT_TRUE(q.push(tm(10, "/b")));
  EXPECT_FALSE(q.push(tm(5, "/full")));
  EXPECT_EQ(q.next_due(), 10u);
  std::vector<TimedMessage> out;
  q.pop_due(9, out);
  EXPECT_TRUE(out.empty());
  q.pop_due(10, out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].message.address, "/a");
  EXPECT_EQ(out[1].message.address, "/b");
  EXPECT_EQ(q.size(), 1u);
  EXPECT_TRUE(q.push(tm(20, "/d")));
  out.clear();
  q.pop_due(100, out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].message.address, "/d");
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(q.next_due(), 0u);
}

TEST(OscPacket, TimetagsCountFrom1900) {
  const uint64_t now = timetag_now();
  EXPECT_GT(now >> 32, 3'900'000'000ull);  // after 2023
  EXPECT_NEAR(timetag_seconds(timetag_add(now, 1.5), now), 1.5, 1e-6);
  EXPECT_NEAR(timetag_seconds(now, timetag_add(now, 2.0)), -2.0, 1e-6);
}

// 5,000 random and mutated datagrams through validate + decode + dispatch:
// no crash, and every refused packet leaves every parameter, counter and
// switch as it was.
TEST(OscPacket, RandomAndMutatedDatagramsChangeNothing) {
  auto rig = test::make_rig();
  std::vector<std::pair<Peer, OscMessage>> sent;
  Dispatcher d(*rig->segment, rig->patch, ServerHooks{}, OscMap{},
               [&](const Peer& p, const OscMessage& m) { sent.emplace_back(p, m); });
  std::mt19937 rng(12345);
  const std::vector<Bytes> seeds = {
      msg("/p/gain_db", {OscArg::float32(-3.0f)}), msg("/rackd/status", {}),
      msg("/rackd/module/bypass", {OscArg::string("p"), OscArg::int32(1)}),
      msg("/src/freq_hz/get", {}), bundle(kImmediate, {msg("/p/bypass", {OscArg::boolean(true)})}),
      Bytes{0x23, 0x66, 0x00, 0x00, 0x2c, 0x62, 0x80, 0x00}, raw("/f\0\0,b\0\0", 8)};
  std::size_t refused = 0;
  for (int n = 0; n < 5000; ++n) {
    Bytes b;
    if (n % 3 == 0) {
      b.resize(rng() % 64);
      for (auto& x : b) x = static_cast<uint8_t>(rng());
      if (n % 2 && !b.empty()) b[0] = (n % 4) ? '/' : '#';
    } else {
      b = seeds[rng() % seeds.size()];
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int k = 0; k < flips && !b.empty(); ++k) {
        switch (rng() % 4) {
          case 0: b[rng() % b.size()] = static_cast<uint8_t>(rng()); break;
          case 1: b.resize(rng() % (b.size() + 8)); break;
          case 2: b[rng() % b.size()] ^= static_cast<uint8_t>(1u << (rng() % 8)); break;
          case 3: b.insert(b.begin() + static_cast<long>(rng() % b.size()), static_cast<uint8_t>(rng())); break;
        }
      }
    }
    const std::string before = test::snapshot(*rig->segment);
    std::vector<TimedMessage> out;
    std::string why;
    if (!unpack_packet(b.data(), b.size(), out, why)) {
      ++refused;
      EXPECT_TRUE(out.empty());
      d.error(Peer{}, packet_label(b.data(), b.size()), why);
      EXPECT_EQ(test::snapshot(*rig->segment), before) << "refused packet changed state";
      continue;
    }
    for (const auto& m : out) d.dispatch(m.message, Peer{});
  }
  EXPECT_GT(refused, 4000u);
  // Nothing refused was dispatched, and the segment is still consistent.
  for (uint32_t i = 0; i < rig->segment->module_count(); ++i)
    for (uint32_t p = 0; p < rig->segment->module_in(i).param_count; ++p)
      EXPECT_EQ(rig->segment->module_in(i).params[p].seq.load() % 2, 0u);
}

}  // namespace
}  // namespace rackd::control
