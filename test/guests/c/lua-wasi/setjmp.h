/* Stand-in <setjmp.h> for building Lua against a wasi-libc without
 * setjmp/longjmp. Lua's ldo.c includes <setjmp.h> unconditionally, but with
 * the LUAI_THROW/LUAI_TRY/luai_jmpbuf overrides in lua_wasi.h it uses nothing
 * from it. Only on the include path of the Lua sources and lua_main.c. */
#ifndef MVVM_LUA_WASI_SETJMP_H
#define MVVM_LUA_WASI_SETJMP_H
#endif
