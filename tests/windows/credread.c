/*
 * credread TARGET: prints the secret of the generic credential TARGET in the Windows Credential Manager
 * and exits 0; exits 1 when there is none, 2 on a usage error. A test fixture, for checking from outside
 * CallBridge where its secrets went (the Windows counterpart of `secret-tool lookup`); never shipped.
 *
 * CallBridge keeps secrets with the keyring crate, whose Windows store writes a CRED_TYPE_GENERIC
 * credential named "USER.SERVICE" whose blob is the password in UTF-16 without a terminating NUL
 * (https://docs.rs/keyring/latest/keyring/windows/index.html). Read with CredReadW
 * (https://learn.microsoft.com/en-us/windows/win32/api/wincred/nf-wincred-credreadw), printed as UTF-8
 * with nothing added.
 */
#include <windows.h>
#include <wincred.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <io.h>

int wmain(int argc, wchar_t **argv)
{
    PCREDENTIALW cred = NULL;
    if (argc != 2) {
        fputs("usage: credread TARGET\n", stderr);
        return 2;
    }
    if (!CredReadW(argv[1], CRED_TYPE_GENERIC, 0, &cred)) {
        fprintf(stderr, "credread: no generic credential %ls (error %lu)\n", argv[1], GetLastError());
        return 1;
    }
    int chars = (int)(cred->CredentialBlobSize / sizeof(wchar_t));
    int bytes = WideCharToMultiByte(CP_UTF8, 0, (const wchar_t *)cred->CredentialBlob, chars, NULL, 0, NULL, NULL);
    char *utf8 = malloc(bytes > 0 ? (size_t)bytes : 1);
    if (utf8 == NULL) {
        CredFree(cred);
        return 3;
    }
    WideCharToMultiByte(CP_UTF8, 0, (const wchar_t *)cred->CredentialBlob, chars, utf8, bytes, NULL, NULL);
    _setmode(_fileno(stdout), _O_BINARY);
    fwrite(utf8, 1, (size_t)bytes, stdout);
    fflush(stdout);
    free(utf8);
    CredFree(cred);
    return 0;
}
