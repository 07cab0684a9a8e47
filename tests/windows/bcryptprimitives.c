/*
 * A stand-in for Windows' bcryptprimitives.dll, for running CallBridge under wine only; never shipped.
 *
 * Rust's standard library (1.78 and later) gets random bytes from ProcessPrng in bcryptprimitives.dll
 * (https://learn.microsoft.com/en-us/windows/win32/seccng/processprng), present on Windows 10 and later.
 * Debian's wine 8 has no such DLL, so a Rust program fails to load. This one exports ProcessPrng and
 * fills the buffer with RtlGenRandom (SystemFunction036 in advapi32,
 * https://learn.microsoft.com/en-us/windows/win32/api/ntsecapi/nf-ntsecapi-rtlgenrandom), which wine
 * has. scripts/windows.sh builds it with mingw and puts it beside the .exe under test.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

/* ProcessPrng always succeeds on Windows; RtlGenRandom takes at most ULONG_MAX bytes per call. */
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x7fffffff ? 0x7fffffff : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}

BOOL WINAPI DllMain(HINSTANCE instance, DWORD reason, LPVOID reserved)
{
    (void)instance;
    (void)reason;
    (void)reserved;
    return TRUE;
}
