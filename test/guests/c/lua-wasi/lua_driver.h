/* Shared by the Lua drivers (c/lua_main.c and bench/lua_bench.c): the hook lua_wasi.h makes Lua
 * call instead of longjmp, and the run of a script. There is no setjmp in this wasi-libc, so a Lua
 * error cannot be caught: print it and abort. Include it in exactly one translation unit of a
 * program (the driver). */
#ifndef MVVM_LUA_DRIVER_H
#define MVVM_LUA_DRIVER_H

#include <stdio.h>
#include <stdlib.h>

#include "lauxlib.h"
#include "lua.h"
#include "lualib.h"

void mvvm_lua_throw(struct lua_State *L, int status) {
    const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(no message)";
    fflush(stdout);
    fprintf(stderr, "lua: unrecoverable error (status %d): %s\n", status, msg);
    abort();
}

/* Runs `script` in a fresh state with the standard libraries; if `scale` >= 0, the global SCALE
 * holds it. Returns the process exit status. */
static int mvvm_lua_run(const char *script, lua_Integer scale) {
    lua_State *L = luaL_newstate();
    if (!L) {
        fprintf(stderr, "cannot create Lua state\n");
        return 1;
    }
    luaL_openlibs(L);
    if (scale >= 0) {
        lua_pushinteger(L, scale);
        lua_setglobal(L, "SCALE");
    }
    int rc = luaL_loadstring(L, script);
    if (rc == LUA_OK) rc = lua_pcall(L, 0, 0, 0);
    if (rc != LUA_OK) {
        printf("lua error: %s\n", lua_tostring(L, -1));
        lua_close(L);
        return 1;
    }
    lua_close(L);
    return 0;
}

#endif
