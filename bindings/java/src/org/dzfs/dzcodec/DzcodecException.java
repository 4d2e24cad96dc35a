// DzcodecException: every libdzcodec failure seen from Java (damaged or truncated input, a
// missing model, bad options). getCode() is the C API's DZC_E_* code (negative).
package org.dzfs.dzcodec;

import java.io.IOException;

public class DzcodecException extends IOException {
  private static final long serialVersionUID = 1L;
  private final int code;

  public DzcodecException(int code, String message) {
    super(message);
    this.code = code;
  }

  public int getCode() {
    return code;
  }
}
