// The one translation unit that compiles Asio, Asio's OpenSSL layer and Beast
// (BOOST_ASIO_SEPARATE_COMPILATION / BOOST_BEAST_SEPARATE_COMPILATION): every other file only
// sees their declarations and templates, which keeps the 2-core build short.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
