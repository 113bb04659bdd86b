// Small RAII owners for GLib things held across a worker's life.
#pragma once

#include <glib-object.h>

#include <utility>

namespace osx {

struct VariantRef {
  GVariant* v = nullptr;
  VariantRef() = default;
  explicit VariantRef(GVariant* owned) : v(owned) {}
  VariantRef(const VariantRef&) = delete;
  VariantRef& operator=(const VariantRef&) = delete;
  VariantRef& operator=(VariantRef&& o) noexcept {
    std::swap(v, o.v);
    return *this;
  }
  ~VariantRef() {
    if (v) g_variant_unref(v);
  }
};

// One counted reference on a GObject: taken from a borrowed pointer, or adopted.
template <typename T>
class ObjectRef {
 public:
  ObjectRef() = default;
  explicit ObjectRef(T* borrowed) : p_(borrowed ? static_cast<T*>(g_object_ref(borrowed)) : nullptr) {}
  static ObjectRef Adopt(T* owned) {
    ObjectRef r;
    r.p_ = owned;
    return r;
  }
  ObjectRef(ObjectRef&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  ObjectRef& operator=(ObjectRef&& o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  ObjectRef(const ObjectRef&) = delete;
  ObjectRef& operator=(const ObjectRef&) = delete;
  ~ObjectRef() {
    if (p_) g_object_unref(p_);
  }
  T* get() const { return p_; }
  explicit operator bool() const { return p_ != nullptr; }

 private:
  T* p_ = nullptr;
};

}  // namespace osx
