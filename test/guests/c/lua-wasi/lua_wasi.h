/* Force-included (-include lua_wasi.h) into every Lua source file and into
 * lua_main.c when building Lua 5.4 for wasm32-wasi.
 *
 * - This wasi-libc has no setjmp/longjmp, so Lua cannot unwind: a raised
 *   error calls mvvm_lua_throw() (defined in lua_main.c), which prints the
 *   message and aborts. Scripts must not raise errors, call error(), or
 *   yield from coroutines (coroutine.yield unwinds with LUAI_THROW too).
 * - The string-hash seed is a constant instead of time/address based, so
 *   runs are reproducible.
 * - os.execute/os.tmpname have no WASI equivalent: stubbed to fail. */
#ifndef MVVM_LUA_WASI_H
#define MVVM_LUA_WASI_H

struct lua_State;
void mvvm_lua_throw(struct lua_State *L, int status) __attribute__((noreturn));

#define LUAI_THROW(L, c) mvvm_lua_throw((L), (c)->status)
#define LUAI_TRY(L, c, a) { a }
#define luai_jmpbuf int

#define luai_makeseed(L) ((unsigned int)0x6d76766d)

#define l_system(cmd) ((cmd) == NULL ? 0 : -1)
#define LUA_TMPNAMBUFSIZE 32
#define lua_tmpnam(b, e) { (b)[0] = '\0'; (e) = 1; }

#endif
