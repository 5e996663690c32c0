// Result<T, E>: expected failures as values, for codecs and the backplane (no exceptions across callbacks).
#pragma once
#include <utility>
#include <variant>

namespace herald {

template <typename E>
struct Failure {
    E error;
};
template <typename E>
Failure<std::decay_t<E>> fail(E&& e) { return {std::forward<E>(e)}; }

template <typename T, typename E>
class Result {
public:
    Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
    Result(Failure<E> f) : v_(std::in_place_index<1>, std::move(f.error)) {}
    template <typename F>
        requires(!std::is_same_v<F, E>)
    Result(Failure<F> f) : v_(std::in_place_index<1>, E(std::move(f.error))) {}

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }
    T& value() { return std::get<0>(v_); }
    const T& value() const { return std::get<0>(v_); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() { return value(); }
    const T& operator*() const { return value(); }
    const E& error() const { return std::get<1>(v_); }

private:
    std::variant<T, E> v_;
};

struct Unit {};

}  // namespace herald
