/* lua_main.c -- our driver embedding Lua 5.4 (sources from the lua-src crate).
 * Runs the script below, which prints through `print`: recursion, closures,
 * string.format, table.sort with a comparator, string.rep/gsub/gmatch,
 * integer/float arithmetic, metatables, varargs, utf8.
 * Built with lua-wasi/lua_wasi.h force-included: there is no setjmp in this
 * wasi-libc, so a Lua error aborts (the script raises none and uses no
 * coroutines). Exits 0. */
#include <stdio.h>
#include <stdlib.h>

#include "lauxlib.h"
#include "lua.h"
#include "lualib.h"
#include "lua_driver.h"


static const char *script =
    "local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end\n"
    "print('fib(20) = ' .. fib(20))\n"
    "local memo = {}\n"
    "local function mfib(n) if n < 2 then return n end\n"
    "  local v = memo[n]; if v then return v end\n"
    "  v = mfib(n - 1) + mfib(n - 2); memo[n] = v; return v end\n"
    "print('mfib(90) = ' .. mfib(90))\n"
    "\n"
    "-- string.format\n"
    "print(string.format('%d|%5.2f|%-6s|%x|%q|%g|%e', 42, math.pi, 'ab', 255, 'a\\nb', 1e20, 12345.678))\n"
    "print(string.format('%10.4f|%-10d|%+d|%05d|%s', 1/3, 7, 5, 42, tostring(nil)))\n"
    "\n"
    "-- integers and floats\n"
    "print(math.maxinteger, math.mininteger, math.maxinteger + 1 == math.mininteger)\n"
    "print(7 // 2, -7 // 2, 7 % -3, 7.0 // 2, 2^10, 10 / 4, 3 | 5, 3 & 5, 3 ~ 5, ~0, 1 << 62, 256 >> 4)\n"
    "print(math.type(1), math.type(1.0), math.type('1'), 1 == 1.0, math.tointeger(3.0), 0x7fffffffffffffff)\n"
    "print(string.format('%.14g', math.sqrt(2)), math.floor(-3.5), math.ceil(-3.5), math.abs(math.mininteger + 1))\n"
    "\n"
    "-- table.sort with a comparator, on LCG data\n"
    "local seed = 12345\n"
    "local function rnd() seed = (seed * 1103515245 + 12345) % 2147483648; return seed end\n"
    "local t = {}\n"
    "for i = 1, 1000 do t[i] = { key = rnd() % 10000, id = i } end\n"
    "table.sort(t, function(a, b) if a.key ~= b.key then return a.key > b.key end return a.id < b.id end)\n"
    "local parts = {}\n"
    "for i = 1, 5 do parts[#parts + 1] = t[i].key .. '#' .. t[i].id end\n"
    "print('top5: ' .. table.concat(parts, ' '))\n"
    "local sum = 0\n"
    "for i, v in ipairs(t) do sum = sum + v.key * i end\n"
    "print('weighted sum: ' .. sum)\n"
    "local nums = {}\n"
    "for i = 1, 20 do nums[i] = (i * 37) % 23 end\n"
    "table.sort(nums)\n"
    "print('sorted: ' .. table.concat(nums, ','))\n"
    "\n"
    "-- closures\n"
    "local function counter(start, step)\n"
    "  local n = start\n"
    "  return function() n = n + step; return n end, function() return n end\n"
    "end\n"
    "local inc, get = counter(10, 3)\n"
    "for _ = 1, 5 do inc() end\n"
    "local inc2 = counter(0, -1)\n"
    "inc2(); inc2()\n"
    "print('closures: ' .. get() .. ' ' .. inc2())\n"
    "local adders = {}\n"
    "for i = 1, 5 do adders[i] = function(x) return x + i * i end end\n"
    "local acc = 0\n"
    "for i = 1, 5 do acc = adders[i](acc) end\n"
    "print('adders: ' .. acc)\n"
    "local function compose(f, g) return function(...) return f(g(...)) end end\n"
    "print('compose: ' .. compose(function(x) return x * 2 end, function(a, b) return a + b end)(20, 1))\n"
    "\n"
    "-- strings\n"
    "local s = string.rep('ab', 5, '-')\n"
    "print(s, #s, s:upper(), s:reverse())\n"
    "local text = 'the quick brown fox jumps over the lazy dog'\n"
    "local replaced, n = text:gsub('%w+', function(w) if #w > 4 then return w:upper() end end)\n"
    "print(replaced, n)\n"
    "print((text:gsub('(%w+) (%w+)', '%2 %1')))\n"
    "print(text:gsub('o', '0', 2))\n"
    "local words = {}\n"
    "for w in text:gmatch('%a+') do words[#words + 1] = w end\n"
    "table.sort(words)\n"
    "print(#words, table.concat(words, ' '))\n"
    "print(text:find('fox'), text:match('(%a+) dog'), ('x=10, y=20'):match('x=(%d+), y=(%d+)'))\n"
    "print(string.byte('A'), string.char(72, 105), ('%d items'):format(3), ('abc'):rep(3))\n"
    "local big = string.rep('lua ', 2000)\n"
    "local cnt = select(2, big:gsub('lua', 'LUA'))\n"
    "print('big: ' .. #big .. ' ' .. cnt)\n"
    "\n"
    "-- metatables and varargs\n"
    "local V = {}\n"
    "V.__index = V\n"
    "V.__add = function(a, b) return setmetatable({ x = a.x + b.x, y = a.y + b.y }, V) end\n"
    "V.__tostring = function(v) return '(' .. v.x .. ',' .. v.y .. ')' end\n"
    "V.__eq = function(a, b) return a.x == b.x and a.y == b.y end\n"
    "function V.len2(v) return v.x * v.x + v.y * v.y end\n"
    "local a, b = setmetatable({ x = 1, y = 2 }, V), setmetatable({ x = 3, y = -7 }, V)\n"
    "print(tostring(a + b), (a + b):len2(), a + b == setmetatable({ x = 4, y = -5 }, V))\n"
    "local function va(...) return select('#', ...), ... end\n"
    "print(va(1, nil, 3))\n"
    "print(table.unpack({ 1, 2, 3 }, 2))\n"
    "\n"
    "-- deterministic iteration over a hash table: sort the keys\n"
    "local h = {}\n"
    "for i = 1, 50 do h['k' .. (i * 7 % 50)] = i end\n"
    "local keys = {}\n"
    "for k in pairs(h) do keys[#keys + 1] = k end\n"
    "table.sort(keys)\n"
    "print(#keys, keys[1], keys[#keys], h.k0, h.k49)\n"
    "\n"
    "-- utf8 and goto\n"
    "print(utf8.char(72, 228, 8364, 128512), utf8.len('h\\u{e4}\\u{20ac}'), #utf8.char(128512))\n"
    "local i = 0\n"
    "::top:: i = i + 1\n"
    "if i < 10 then goto top end\n"
    "print('goto: ' .. i)\n"
    "math.randomseed(42)\n"
    "local r = 0\n"
    "for _ = 1, 100 do r = r + math.random(1, 6) end\n"
    "print('dice: ' .. r)\n"
    "collectgarbage()\n"
    "print('lua: done')\n";

int main(void) {
    lua_State *L = luaL_newstate();
    if (!L) {
        fprintf(stderr, "cannot create Lua state\n");
        return 1;
    }
    luaL_openlibs(L);
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
