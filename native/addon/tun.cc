// The TUN device of native mode on a node (lib/node/tun.ts): opening /dev/net/tun with
// ioctl(TUNSETIFF) (IFF_TUN | IFF_NO_PI: every read and write is one bare IP packet), a
// readiness watch on its fd with libuv's uv_poll_t on the JS thread's loop (no thread of our
// own, so the single-threaded core is only ever called from JS), and batched non-blocking
// reads and writes into caller-owned arrays. Nothing here throws for a system call's failure:
// it returns the errno, and lib/node/tun.ts turns it into a coded error.
#include "tun.h"

#include <errno.h>
#include <fcntl.h>
#if defined(__linux__)
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#endif
#include <unistd.h>
#include <uv.h>

#include <cstring>
#include <string>

namespace svcplane::addon {

namespace {

// Verdict codes of processPackets (lib/dataplane/packets.ts PACKET_VERDICT).
constexpr uint8_t kPass = 0, kForward = 1, kReply = 2, kReject = 3;

struct Bytes {
  uint8_t* data = nullptr;
  size_t length = 0;  // elements
};

template <typename T, napi_typedarray_type Type>
bool typedArg(const Napi::CallbackInfo& info, size_t i, const char* name, T*& data, size_t& length) {
  Napi::Env env = info.Env();
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != Type) {
    Napi::TypeError::New(env, std::string(name) + " has the wrong array type").ThrowAsJavaScriptException();
    return false;
  }
  Napi::TypedArray a = info[i].As<Napi::TypedArray>();
  data = reinterpret_cast<T*>(static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset());
  length = a.ElementLength();
  return true;
}

bool u32Arg(const Napi::CallbackInfo& info, size_t i, const char* name, uint32_t& out) {
  if (!info[i].IsNumber()) {
    Napi::TypeError::New(info.Env(), std::string(name) + " must be a number").ThrowAsJavaScriptException();
    return false;
  }
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= 0 && v <= 4294967295.0) || v != double(uint32_t(v))) {
    Napi::RangeError::New(info.Env(), std::string(name) + " must be an integer 0..2^32-1").ThrowAsJavaScriptException();
    return false;
  }
  out = uint32_t(v);
  return true;
}

// tunOpen(name) -> { fd, name } or { errno, message }. The fd is non-blocking and close-on-exec;
// a new device is not persistent, so it disappears with the fd (also when the process dies);
// a persistent one (tunSetPersist) left by a previous run is attached to again.
Napi::Value TunOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "name must be a string").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string name = info[0].As<Napi::String>().Utf8Value();
  Napi::Object out = Napi::Object::New(env);
  auto fail = [&](int err, const std::string& what) {
    out.Set("errno", double(err));
    out.Set("message", what + ": " + std::strerror(err));
    return out;
  };
#if !defined(__linux__)
  return fail(ENOSYS, "TUN devices are opened on Linux only");
#else
  if (name.empty() || name.size() >= IFNAMSIZ || name.find_first_of("/ \t\n:%") != std::string::npos)
    return fail(EINVAL, "bad device name");
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return fail(errno, "open /dev/net/tun");
  struct ifreq ifr;
  std::memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  std::memcpy(ifr.ifr_name, name.data(), name.size());
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    close(fd);
    return fail(err, "ioctl TUNSETIFF " + name);
  }
  out.Set("fd", double(fd));
  out.Set("name", std::string(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ)));
  return out;
#endif
}

// tunSetPersist(fd, on) -> 0 or the errno: TUNSETPERSIST. A persistent device outlives its fd
// (a restart reattaches with TUNSETIFF, its routes kept; packets routed to it meanwhile are
// dropped, not delivered locally); clearing it makes the device go when the fd closes.
Napi::Value TunSetPersist(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsBoolean()) {
    Napi::TypeError::New(env, "tunSetPersist(fd, on)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
#if !defined(__linux__)
  return Napi::Number::New(env, ENOSYS);
#else
  int fd = info[0].As<Napi::Number>().Int32Value();
  unsigned long on = info[1].As<Napi::Boolean>().Value() ? 1 : 0;
  return Napi::Number::New(env, ioctl(fd, TUNSETPERSIST, on) < 0 ? errno : 0);
#endif
}

// One open TUN fd: watch(callback) calls back on the JS thread whenever the fd is readable;
// read() fills a batch; write() sends each packet of a batch as processPackets decided it.
class TunDevice : public Napi::ObjectWrap<TunDevice> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "TunDevice",
                       {InstanceMethod<&TunDevice::Watch>("watch"), InstanceMethod<&TunDevice::Unwatch>("unwatch"),
                        InstanceMethod<&TunDevice::Read>("read"), InstanceMethod<&TunDevice::Write>("write"),
                        InstanceMethod<&TunDevice::Stats>("stats"), InstanceMethod<&TunDevice::Close>("close")});
  }

  explicit TunDevice(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TunDevice>(info) {
    uint32_t fd;
    if (!u32Arg(info, 0, "fd", fd)) return;
    fd_ = int(fd);
  }

  ~TunDevice() override {
    StopPoll();
    if (fd_ >= 0) close(fd_);
  }

 private:
  // new TunDevice(fd).watch(callback): the callback runs (with no argument) each time the
  // fd becomes readable; it is expected to read until read() returns 0.
  Napi::Value Watch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (fd_ < 0) return Closed(env);
    if (info.Length() < 1 || !info[0].IsFunction()) {
      Napi::TypeError::New(env, "callback must be a function").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (poll_ != nullptr) {
      Napi::Error::New(env, "already watched").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
      Napi::Error::New(env, "no event loop").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    auto* poll = new uv_poll_t;
    if (int r = uv_poll_init(loop, poll, fd_); r != 0) {
      delete poll;
      return Errno(env, -r);
    }
    poll->data = this;
    if (int r = uv_poll_start(poll, UV_READABLE, OnReadable); r != 0) {
      uv_close(reinterpret_cast<uv_handle_t*>(poll), FreePoll);
      return Errno(env, -r);
    }
    poll_ = poll;
    callback_ = Napi::Persistent(info[0].As<Napi::Function>());
    context_ = std::make_unique<Napi::AsyncContext>(env, "svcplane:tun");
    Ref();  // kept alive while watched, whatever JS holds
    return env.Undefined();
  }

  Napi::Value Unwatch(const Napi::CallbackInfo& info) {
    StopPoll();
    return info.Env().Undefined();
  }

  // read(buffer, offsets, lengths, maxPackets, maxFrame) -> packets read (0: nothing waiting),
  // or -errno when the first read failed. Reads until EAGAIN, maxPackets, or less than maxFrame
  // bytes of room left; packet i is buffer[offsets[i] .. offsets[i] + lengths[i]).
  Napi::Value Read(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (fd_ < 0) return Closed(env);
    uint8_t* buf;
    uint32_t *offs, *lens;
    size_t bufLen, offLen, lenLen;
    uint32_t maxPackets, maxFrame;
    if (info.Length() < 5 || !typedArg<uint8_t, napi_uint8_array>(info, 0, "buffer", buf, bufLen) ||
        !typedArg<uint32_t, napi_uint32_array>(info, 1, "offsets", offs, offLen) ||
        !typedArg<uint32_t, napi_uint32_array>(info, 2, "lengths", lens, lenLen) ||
        !u32Arg(info, 3, "maxPackets", maxPackets) || !u32Arg(info, 4, "maxFrame", maxFrame))
      return env.Undefined();
    if (maxPackets > offLen || maxPackets > lenLen || maxFrame == 0) {
      Napi::RangeError::New(env, "maxPackets exceeds offsets/lengths, or maxFrame is 0").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    uint32_t n = 0;
    size_t used = 0;
    while (n < maxPackets && bufLen - used >= maxFrame) {
      ssize_t got = read(fd_, buf + used, maxFrame);
      if (got < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK || n > 0) break;
        ++readErrors_;
        return Napi::Number::New(env, -double(errno));
      }
      if (got == 0) break;
      offs[n] = uint32_t(used);
      lens[n] = uint32_t(got);
      used += size_t(got);
      ++n;
    }
    packetsRead_ += n;
    if (n > 0) ++batches_;
    return Napi::Number::New(env, n);
  }

  // write(buffer, offsets, lengths, verdicts, count, replies, replyOffsets, replyLengths) ->
  // packets written. Forward and reply verdicts send the rewritten packet, pass sends it as it
  // came (the kernel routes it on: packets from the TUN are never sent back into it), reject
  // sends its reply when processPackets wrote one, drop sends nothing. replies may be null.
  Napi::Value Write(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (fd_ < 0) return Closed(env);
    uint8_t *buf, *verdicts, *rbuf = nullptr;
    uint32_t *offs, *lens, *roffs = nullptr, *rlens = nullptr;
    size_t bufLen, offLen, lenLen, vLen, rbufLen = 0, roffLen = 0, rlenLen = 0;
    uint32_t count;
    if (info.Length() < 8 || !typedArg<uint8_t, napi_uint8_array>(info, 0, "buffer", buf, bufLen) ||
        !typedArg<uint32_t, napi_uint32_array>(info, 1, "offsets", offs, offLen) ||
        !typedArg<uint32_t, napi_uint32_array>(info, 2, "lengths", lens, lenLen) ||
        !typedArg<uint8_t, napi_uint8_array>(info, 3, "verdicts", verdicts, vLen) || !u32Arg(info, 4, "count", count))
      return env.Undefined();
    bool replies = !info[5].IsNull() && !info[5].IsUndefined();
    if (replies && (!typedArg<uint8_t, napi_uint8_array>(info, 5, "replies", rbuf, rbufLen) ||
                    !typedArg<uint32_t, napi_uint32_array>(info, 6, "replyOffsets", roffs, roffLen) ||
                    !typedArg<uint32_t, napi_uint32_array>(info, 7, "replyLengths", rlens, rlenLen)))
      return env.Undefined();
    if (count > offLen || count > lenLen || count > vLen || (replies && (count > roffLen || count > rlenLen))) {
      Napi::RangeError::New(env, "count exceeds the arrays").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    uint32_t written = 0;
    for (uint32_t i = 0; i < count; ++i) {
      const uint8_t* data = nullptr;
      size_t len = 0;
      switch (verdicts[i]) {
        case kPass:
        case kForward:
        case kReply:
          if (size_t(offs[i]) + lens[i] <= bufLen) data = buf + offs[i], len = lens[i];
          break;
        case kReject:
          if (replies && rlens[i] != 0 && size_t(roffs[i]) + rlens[i] <= rbufLen)
            data = rbuf + roffs[i], len = rlens[i];
          break;
        default: break;  // drop
      }
      if (data == nullptr || len == 0) continue;
      ssize_t put;
      do put = write(fd_, data, len);
      while (put < 0 && errno == EINTR);
      if (put == ssize_t(len)) {
        ++written;
      } else {
        ++writeErrors_;
        lastWriteErrno_ = put < 0 ? errno : EIO;
      }
    }
    packetsWritten_ += written;
    return Napi::Number::New(env, written);
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("batches", double(batches_));
    o.Set("packetsRead", double(packetsRead_));
    o.Set("packetsWritten", double(packetsWritten_));
    o.Set("readErrors", double(readErrors_));
    o.Set("writeErrors", double(writeErrors_));
    o.Set("lastWriteErrno", double(lastWriteErrno_));
    return o;
  }

  // Stops the watch and closes the fd (the device goes away with it). Idempotent.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    StopPoll();
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    return info.Env().Undefined();
  }

  static void OnReadable(uv_poll_t* poll, int status, int events) {
    auto* self = static_cast<TunDevice*>(poll->data);
    if (self == nullptr || self->callback_.IsEmpty()) return;
    Napi::Env env = self->callback_.Env();
    Napi::HandleScope scope(env);
    Napi::Object recv = self->Value();
    napi_value result;
    napi_status s = napi_make_callback(env, *self->context_, recv, self->callback_.Value(), 0, nullptr, &result);
    if (s == napi_pending_exception) {
      // The pump catches its own errors; anything else is the process's uncaught exception.
      napi_value err;
      if (napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
    }
  }

  static void FreePoll(uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); }

  void StopPoll() {
    if (poll_ == nullptr) return;
    uv_poll_stop(poll_);
    poll_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), FreePoll);
    poll_ = nullptr;
    callback_.Reset();
    context_.reset();
    Unref();
  }

  static Napi::Value Closed(Napi::Env env) {
    Napi::Error::New(env, "the TUN device is closed").ThrowAsJavaScriptException();
    return env.Undefined();
  }

  static Napi::Value Errno(Napi::Env env, int err) {
    Napi::Error::New(env, std::string("uv_poll: ") + std::strerror(err)).ThrowAsJavaScriptException();
    return env.Undefined();
  }

  int fd_ = -1;
  uv_poll_t* poll_ = nullptr;
  Napi::FunctionReference callback_;
  std::unique_ptr<Napi::AsyncContext> context_;
  uint64_t batches_ = 0, packetsRead_ = 0, packetsWritten_ = 0, readErrors_ = 0, writeErrors_ = 0;
  int lastWriteErrno_ = 0;
};

}  // namespace

void registerTun(Napi::Env env, Napi::Object exports) {
  exports.Set("tunOpen", Napi::Function::New(env, TunOpen, "tunOpen"));
  exports.Set("tunSetPersist", Napi::Function::New(env, TunSetPersist, "tunSetPersist"));
  exports.Set("TunDevice", TunDevice::Define(env));
}

}  // namespace svcplane::addon
