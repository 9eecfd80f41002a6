#include "foundry/core/tensor.h"

#include "testing.h"

namespace foundry {
namespace {

TEST(Shape, BasicsAndErrors) {
  Shape s{2, 3, 5};
  EXPECT_EQ(s.ndim(), 3);
  EXPECT_EQ(s.numel(), 30);
  EXPECT_EQ(s[-1], 5);
  EXPECT_EQ(s.rows(), 6);
  EXPECT_EQ(s.str(), "(2, 3, 5)");
  EXPECT_EQ(Shape{7}.str(), "(7,)");
  EXPECT_THROW(s[3], Error);
  EXPECT_THROW((Shape{1, -2}), Error);
}

TEST(Device, Parse) {
  EXPECT_EQ(Device::parse("cpu"), Device::cpu());
  EXPECT_EQ(Device::parse("cuda:3"), Device::cuda(3));
  EXPECT_EQ(Device::parse("cuda:3").str(), "cuda:3");
  try {
    Device::parse("tpu");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'tpu'"), std::string::npos);
  }
}

TEST(Error, CarriesFileAndLine) {
  try {
    FOUNDRY_CHECK(1 + 1 == 3, "arithmetic {} broke", 42);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.message(), "arithmetic 42 broke");
    EXPECT_NE(std::string(e.file()).find("tensor_test.cpp"), std::string::npos);
    EXPECT_GT(e.line(), 0);
  }
}

TEST(Tensor, ViewsShareStorage) {
  Tensor t = Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor row = t.slice(1, 2);
  EXPECT_EQ(row.shape(), (Shape{1, 3}));
  row.ptr<float>()[0] = 40;
  EXPECT_EQ(t.to_vector()[3], 40);
  Tensor flat = t.reshape({6});
  EXPECT_EQ(flat.ptr<float>(), t.ptr<float>());
  EXPECT_THROW(t.reshape({4}), Error);
  EXPECT_THROW(t.slice(1, 3), Error);
  EXPECT_THROW(t.ptr<int32_t>(), Error);
  Tensor c = t.clone();
  c.ptr<float>()[0] = -1;
  EXPECT_EQ(t.to_vector()[0], 1);
}

TEST(Tensor, DtypeConversionRoundsToNearestEven) {
  Tensor t = Tensor::from({3}, {1.f, 1.00390625f, -2.5f});  // 1 + 2^-8 ties to 1 in bf16
  const auto back = t.to(DType::bf16).to(DType::f32).to_vector();
  EXPECT_EQ(back, (std::vector<float>{1.f, 1.f, -2.5f}));
  EXPECT_EQ(t.to(DType::f16).to_vector(), (std::vector<float>{1.f, 1.00390625f, -2.5f}));
}

TEST(Checks, NameOpAndShapes) {
  Tensor t = Tensor::empty({2, 3});
  try {
    check_shape("myop", "x", t, {3, 2});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.message(), "myop: x has shape (2, 3), expected (3, 2)");
  }
  EXPECT_THROW(check_dtype("myop", "x", t, DType::bf16), Error);
}

}  // namespace
}  // namespace foundry
